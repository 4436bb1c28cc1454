"""Data sets by name: `build_dataset("cifar100", root=DIR, train=True)`.

Every data set yields `(x, y)` with `x` a float tensor in [0, 1] (images: [C, H, W];
tabular: [D]) and `y` an int class index. Normalization lives inside the model
(`models.Normalized`), so mixing and attacks work in pixel space. The returned object is a
`LabeledDataset`: the samples plus what a model and a report need to know about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from msda_cli.registry import Registry

DATASETS = Registry("dataset")
register_dataset = DATASETS.register


@dataclass
class DatasetInfo:
    """What the rest of msda needs to know about a data set."""

    name: str
    num_classes: int
    in_chans: int  # image channels; for tabular data, the number of features
    image_size: int  # 0 for tabular data
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str] = field(default_factory=list)

    @property
    def is_image(self) -> bool:
        return self.image_size > 0


class LabeledDataset(Dataset):
    """Samples plus `info` and `targets` (one int label per sample, for per-class selection)."""

    def __init__(self, base: Dataset, info: DatasetInfo, targets):
        self.base = base
        self.info = info
        self.targets = torch.as_tensor(list(targets) if not torch.is_tensor(targets) else targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        return self.base[i]


class TensorDataset(Dataset):
    """In-memory samples with an optional per-sample transform (for small embedded sets)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform=None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.y[i])


def build_dataset(name: str, root=None, train: bool = True, augment: bool = True, **options) -> LabeledDataset:
    """Build data set `name`; unknown names and missing files raise MsdaError."""
    return DATASETS.lookup(name)(root=root, train=train, augment=augment, **options)


from msda_cli.data import digits  # noqa: E402,F401  (registers the data sets)
