"""SVHN (cropped digits, format 2) from the official MATLAB files.

On disk (torchvision's layout): <root>/train_32x32.mat, <root>/test_32x32.mat and, with
`extra=True`, <root>/extra_32x32.mat (added to the training split). Each holds `X`
(32x32x3xN uint8) and `y` (N x 1, digit 0 stored as 10). Read here with scipy, as
`torchvision.datasets.SVHN` does, but without its md5 pass over the whole file at every start
(1.3 GB for `extra`), so any file in the real format works; with train and extra merged into one
split, files found in <root>/svhn/ too, and a bad file named in one line. `download=True` lets
torchvision fetch and verify them first.
Train augmentation: random crop 32 with 4 px zero padding, no flip (digits are not
mirror-symmetric).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from msda_cli.data import (
    DatasetInfo, LabeledDataset, TensorDataset, fail_missing, register_dataset, resolve_root,
)
from msda_cli.data import transforms as T
from msda_cli.errors import MsdaError

SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
URL = "http://ufldl.stanford.edu/housenumbers/"


def _read_mat(path: Path):
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
        x = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)  # [N, 3, H, W]
        y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except Exception as e:
        raise MsdaError(f"svhn: cannot read {path} as an SVHN .mat file ({type(e).__name__}: {e})") from None
    y[y == 10] = 0
    if len(x) != len(y) or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise MsdaError(f"svhn: {path} has labels outside 0-9 or a label count that does not match its images")
    return x, y


@register_dataset("svhn", label="SVHN")
def svhn(root=None, train: bool = True, augment: bool = True, download: bool = False,
         extra: bool = False) -> LabeledDataset:
    root = resolve_root(root)
    splits = (["train"] + (["extra"] if extra else [])) if train else ["test"]
    if download:
        import torchvision.datasets as tvd

        for split in splits:
            try:
                tvd.SVHN(str(root), split=split, download=True)
            except Exception as e:
                raise MsdaError(f"svhn: download into {root} failed ({type(e).__name__}: {e})") from None
    folder = root if (root / f"{splits[0]}_32x32.mat").is_file() or not (root / "svhn").is_dir() else root / "svhn"
    files = [folder / f"{s}_32x32.mat" for s in splits]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        fail_missing(
            "svhn", f"{', '.join(str(f) for f in files)} (missing: {', '.join(missing)})",
            f"Run with --download on a machine with internet, or get {', '.join(missing)} from {URL} into {folder}.",
        )
    parts = [_read_mat(f) for f in files]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    info = DatasetInfo(
        name="svhn", num_classes=10, in_chans=3, image_size=32, mean=SVHN_MEAN, std=SVHN_STD,
        classes=[str(d) for d in range(10)],
    )
    transform = T.SmallImage(train and augment, 32, padding=4, flip=False)
    return LabeledDataset(TensorDataset(x, y, transform), info, y)
