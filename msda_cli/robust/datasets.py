"""Evaluation sets that are not a model's own test split: image folders and other data sets.

An image folder is read with torchvision's `ImageFolder` (one sub-folder per class), each
image resized so its shorter side is `image_size / crop_ratio` and centre-cropped to
`image_size` (ImageNet's 256 → 224 when `crop_ratio` = 0.875), then `ToTensor` — no
normalization, which lives in the model. A registered data set used as an OOD set is
brought to the model's channels and size the same way when it differs.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch.utils.data import Dataset

from msda_cli.errors import MsdaError

CROP_RATIO = 0.875


def folder_transform(image_size: int, in_chans: int = 3, crop_ratio: float = CROP_RATIO):
    from torchvision import transforms as T

    if image_size < 1:
        raise MsdaError("image folders need a model that takes images (image_size > 0)")
    steps = [T.Resize(max(image_size, round(image_size / crop_ratio))), T.CenterCrop(image_size)]
    if in_chans == 1:
        steps.append(T.Grayscale(num_output_channels=1))
    steps.append(T.ToTensor())
    return T.Compose(steps)


def image_folder(path, image_size: int, in_chans: int = 3, crop_ratio: float = CROP_RATIO):
    """torchvision ImageFolder at `path`, or MsdaError saying what the folder must hold."""
    from torchvision.datasets import ImageFolder

    path = Path(path)
    expected = "one sub-folder per class holding image files (ImageFolder layout)"
    if not path.is_dir():
        raise MsdaError(f"image folder {path} does not exist; expected {expected}")
    try:
        return ImageFolder(str(path), transform=folder_transform(image_size, in_chans, crop_ratio))
    except (FileNotFoundError, RuntimeError) as e:
        raise MsdaError(f"image folder {path} holds no images ({str(e).splitlines()[0]}); "
                        f"expected {expected}") from None


class Reshaped(Dataset):
    """A data set's images brought to `in_chans` channels and `image_size` pixels a side."""

    def __init__(self, base: Dataset, image_size: int, in_chans: int):
        self.base, self.image_size, self.in_chans = base, image_size, in_chans

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        if x.shape[0] != self.in_chans:
            x = x.mean(dim=0, keepdim=True) if self.in_chans == 1 else x[:1].expand(self.in_chans, -1, -1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x[None], size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True)[0].clamp(0, 1)
        return x, y


def open_ood_set(spec: str, info, root=None) -> tuple[Dataset, str]:
    """(data set, name) for `--ood NAME|DIR`: a registered data set's test split or an image folder.

    `info` is the model's DatasetInfo (image size and channels to match).
    """
    from msda_cli.data import DATASETS, build_dataset

    path = Path(spec)
    if path.is_dir():
        return image_folder(path, info.image_size, info.in_chans), path.name
    if spec in DATASETS:
        ds = build_dataset(spec, root=root, train=False, augment=False)
        x = ds[0][0]
        if x.dim() != 3:
            raise MsdaError(f"data set {spec!r} is not an image data set and cannot be an OOD set here")
        if x.shape[0] != info.in_chans or x.shape[-1] != info.image_size:
            ds = Reshaped(ds, info.image_size, info.in_chans)
        return ds, spec
    raise MsdaError(f"OOD set {spec!r} is neither a folder (class sub-folders of images) nor a data set "
                    f"name ({', '.join(sorted(DATASETS))})")
