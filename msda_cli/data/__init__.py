"""Data sets by name: `build_dataset("cifar100", root=DIR, train=True)`.

Every data set yields `(x, y)` with `x` a float tensor in [0, 1] (images: [C, H, W];
tabular: [D], standardized with training statistics) and `y` an int class index.
Normalization lives inside the model (`models.Normalized`, from `info.mean`/`info.std`), so
mixing and attacks work in pixel space. The returned object is a `LabeledDataset`: the
samples plus what a model and a report need to know about them.

A factory is `fn(root=None, train=True, augment=True, **named_options)`. `build_dataset`
checks the options against the factory's named parameters (unknown ones raise `MsdaError`
listing the valid ones) and passes `download` only to factories that take it: sets that live
inside the package (digits, iris ...) need no download. Families, one module each:
`digits`, `cifar` (cifar10, cifar100), `svhn`, `mnist` (mnist, fashion-mnist),
`tinyimagenet`, `imagenet` (imagenet, imagenet100, imagefolder), `tabular` (tabular,
abalone, iris, wine, breast-cancer), `uci` (MixupE Table 4's sets from their official files),
`speech` (speech-commands: MixupE Table 5's spectrograms), `tu` (MixupE Table 6's graphs: mutag, nci1, ptc,
proteins, imdb-binary, imdb-multi).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from msda_cli.errors import MsdaError
from msda_cli.registry import Registry

DATASETS = Registry("dataset")
register_dataset = DATASETS.register

DEFAULT_ROOT = "data"  # where file-based sets look when no `--data-dir` is given
_COMMON = ("root", "train", "augment")


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
    note: str = ""  # something the user should know (e.g. "test split = training folder")
    collate: Callable | None = None  # a DataLoader's collate_fn for samples torch's default cannot batch (graphs)

    @property
    def is_image(self) -> bool:
        return self.image_size > 0


class LabeledDataset(Dataset):
    """Samples plus `info` and `targets` (one int label per sample, for per-class selection)."""

    def __init__(self, base: Dataset, info: DatasetInfo, targets):
        self.base = base
        self.info = info
        if not torch.is_tensor(targets):
            targets = np.asarray(list(targets) if not isinstance(targets, np.ndarray) else targets, dtype=np.int64)
        self.targets = torch.as_tensor(targets, dtype=torch.long)

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


def _factory(name: str):
    key = str(name).strip().lower()
    if key not in DATASETS:
        key = key.replace("_", "-")
    return DATASETS.lookup(key if key in DATASETS else name)


def dataset_options(name: str) -> dict:
    """The options data set `name` takes, with their defaults (`download` included if any)."""
    params = inspect.signature(_factory(name)).parameters
    return {
        k: p.default for k, p in params.items()
        if k not in _COMMON and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def check_dataset_options(name: str, options: dict) -> None:
    """MsdaError for an unknown data set or an option it does not take (no files are read)."""
    valid = dataset_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        shown = ", ".join(sorted(valid)) or "none"
        raise MsdaError(
            f"data set {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {shown}"
        )


def build_dataset(
    name: str, root=None, train: bool = True, augment: bool = True, download: bool = False, **options
) -> LabeledDataset:
    """Build data set `name`; unknown names or options and missing files raise MsdaError.

    `download=True` is passed to the sets that can fetch their files (torchvision's
    readers); sets bundled with the package ignore it; file sets that cannot be fetched
    say where to get them.
    """
    factory = _factory(name)
    check_dataset_options(name, options)
    if "download" in dataset_options(name):
        options["download"] = bool(download)
    return factory(root=root, train=bool(train), augment=bool(augment), **options)


def resolve_root(root) -> Path:
    """The user's data directory (`--data-dir`), `./data` when none is given."""
    return Path(root if root not in (None, "") else DEFAULT_ROOT).expanduser().absolute()


def fail_missing(name: str, expected: str, how: str):
    """Raise the one-line error of a missing data set: where the files go and how to get them."""
    raise MsdaError(f"{name}: data not found; expected {expected}. {how}")


# the families (each module registers its data sets, in this order: the order of a report's columns)
from msda_cli.data import cifar  # noqa: E402,F401
from msda_cli.data import svhn  # noqa: E402,F401
from msda_cli.data import tinyimagenet  # noqa: E402,F401
from msda_cli.data import imagenet  # noqa: E402,F401
from msda_cli.data import tabular  # noqa: E402,F401
from msda_cli.data import uci  # noqa: E402,F401
from msda_cli.data import mnist  # noqa: E402,F401
from msda_cli.data import digits  # noqa: E402,F401
from msda_cli.data import speech  # noqa: E402,F401
from msda_cli.data import tu  # noqa: E402,F401
