"""The embedded default data set: scikit-learn's `load_digits` (1 797 real 8x8 digits).

A fixed stratified 80/20 split, upsampled to `image_size` (32 by default) so the image
methods have room to cut boxes. No download, so every command works out of the box.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from msda_cli.checks import check_int
from msda_cli.data import DatasetInfo, LabeledDataset, TensorDataset, register_dataset

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@lru_cache(maxsize=4)
def _digits_tensors(image_size: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N,1,8,8] in [0,1]
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
        images = images.clamp_(0.0, 1.0)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    idx = torch.arange(len(labels)).numpy()
    train_idx, test_idx = train_test_split(
        idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels.numpy()
    )
    train_idx, test_idx = torch.as_tensor(sorted(train_idx)), torch.as_tensor(sorted(test_idx))
    mean = images[train_idx].mean().item()
    std = images[train_idx].std().item()
    return images, labels, train_idx, test_idx, mean, std


@register_dataset("digits", label="Digits")
def digits(root=None, train: bool = True, augment: bool = True, image_size: int = 32) -> LabeledDataset:
    image_size = check_int("digits image_size", image_size, min=1)
    images, labels, train_idx, test_idx, mean, std = _digits_tensors(image_size)
    idx = train_idx if train else test_idx
    info = DatasetInfo(
        name="digits", num_classes=10, in_chans=1, image_size=int(image_size),
        mean=(mean,), std=(std,), classes=[str(d) for d in range(10)],
    )
    return LabeledDataset(TensorDataset(images[idx], labels[idx]), info, labels[idx])
