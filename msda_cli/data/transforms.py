"""Per-family image transforms. Every pipeline ends in a plain float tensor in [0, 1]:
no normalization here (the model wrapper normalizes with `info.mean` / `info.std`).

- small images held in memory as uint8 [C, H, W] (CIFAR, SVHN, MNIST): train = random
  crop with zero padding (+ horizontal flip where the family allows it); eval = nothing.
- image files (PIL): ImageNet style, train = RandomResizedCrop(size) + flip, eval = resize
  to size/0.875 (256 for 224) + centre crop; the unified-analysis paper's Table 1 crop
  scenarios (`crop="large"`: random crops of 80-100 % of the image area, `crop="small"`:
  25-40 %, resized to 64x64) use RandomResizedCrop with that area range; their eval is the
  same resize + centre crop at the scenario's size (the paper does not describe its eval).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torchvision.transforms import v2

EVAL_CROP_RATIO = 0.875  # 224 / 256
CROP_SCENARIOS = {"large": (0.80, 1.00), "small": (0.25, 0.40)}  # area fraction of the random crop
CROP_SCENARIO_SIZE = 64


def to_float():
    """uint8 tensor or PIL image -> plain float32 tensor in [0, 1]."""
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()]


@dataclass(frozen=True)
class SmallImage:
    """CIFAR-style: random crop `size` after zero padding `padding` (+ flip) when `train`. Called on
    one image (uint8 tensor or PIL) it is the per-sample transform; `data/pipeline.py` reads its
    settings to crop and flip whole batches on the device alike."""

    train: bool
    size: int
    padding: int = 4
    flip: bool = True

    def __call__(self, image):
        return self.steps(image)

    @cached_property
    def steps(self) -> v2.Compose:
        steps = []
        if self.train:
            steps.append(v2.RandomCrop(self.size, padding=self.padding))
            if self.flip:
                steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps + to_float())


def imagenet_style(train: bool, size: int = 224, crop: str | None = None, flip: bool = True):
    """ImageNet-style pipeline for image files; `crop` selects a Table 1 scenario."""
    scale = CROP_SCENARIOS[crop] if crop else (0.08, 1.0)
    if train:
        steps = [v2.RandomResizedCrop(size, scale=scale, antialias=True)]
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps = [v2.Resize(round(size / EVAL_CROP_RATIO), antialias=True), v2.CenterCrop(size)]
    return v2.Compose(steps + to_float())
