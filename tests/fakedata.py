"""Small files in the real on-disk formats of the data sets, for tests that need a data folder.

The image formats' writers live in `test_data.py` (the data layer's own tests); this module adds
the tabular ones and `write_dataset(name, root, options)`, which fills `root` so that
`build_dataset(name, root=root, **options)` finds both splits of that data set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msda_cli.data.tu import TU_SETS
from msda_cli.data.uci import LAYOUTS as UCI_LAYOUTS
from test_data import (  # noqa: F401  (re-exported for other tests)
    pattern_images, write_cifar10, write_cifar100, write_class_folders, write_png, write_svhn, write_tiny_imagenet,
)
from ucifiles import write_uci  # MixupE Table 4's sets in their official formats
from speechfiles import write_speech  # MixupE Table 5's Speech Commands folders
from tufiles import write_tu_set  # MixupE Table 6's TUDatasets

SEXES = ("M", "F", "I")


def write_abalone(path: Path, n: int = 45, seed: int = 0) -> np.ndarray:
    """A UCI `abalone.data`-style CSV (no header): sex, 7 measurements, rings. Returns the rings."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    rings = np.array([4 + (k * 7) % 13 for k in range(n)])  # 4..16: all three classes, stratifiable
    lines = []
    for k in range(n):
        meas = rng.uniform(0.05, 0.8, 7).round(4)
        lines.append(",".join([SEXES[k % 3], *map(str, meas), str(int(rings[k]))]))
    path.write_text("\n".join(lines) + "\n")
    return rings


def write_optdigits(path: Path, n: int = 30, seed: int = 0) -> None:
    """A UCI Optdigits CSV as the shared copy has it: `Block 1`..`Block 64` (0-16) and `Class`."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join([f"Block {i}" for i in range(1, 65)] + ["Class"])
    rows = [",".join(map(str, [*rng.integers(0, 17, 64), k % 10])) for k in range(n)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def write_dataset(name: str, root: Path, options: dict | None = None) -> Path:
    """Write a tiny copy of data set `name` under `root` (both splits); returns the `--data-dir`."""
    options = options or {}
    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        write_cifar10(root, per_batch=4, n_test=6)
    elif name == "cifar100":
        write_cifar100(root, n_train=12, n_test=4)
    elif name == "svhn":
        write_svhn(root, "train", 8)
        write_svhn(root, "test", 4)
    elif name == "tiny-imagenet":
        write_tiny_imagenet(root)
    elif name == "imagenet":
        wnids = ["n01440764", "n01443537", "n01484850"]
        for split in ("train", "val"):
            write_class_folders(root / split, wnids, per_class=2, h=24, w=30, fmt="JPEG")
    elif name == "imagenet100":
        from msda_cli.data.imagenet import CMC_IMAGENET100, read_class_list

        wnids = read_class_list(options["class_list"]) if options.get("class_list") else CMC_IMAGENET100
        for split in ("train", "val"):
            for k, wnid in enumerate(wnids):  # every class of the list needs an image
                write_png(root / split / wnid / f"{wnid}_{split}.JPEG", h=12, w=16, seed=k, fmt="JPEG")
    elif name == "abalone":
        write_abalone(root / "abalone.data")
    elif name in UCI_LAYOUTS:
        write_uci(name, root)
    elif name == "speech-commands":
        write_speech(root, per_word=3)
    elif name in TU_SETS:
        write_tu_set(name, root)
    elif name == "tabular":
        for key in ("path", "test_path"):
            if options.get(key):
                write_optdigits(root / options[key], seed=0 if key == "path" else 1)
    # digits, iris, wine, breast-cancer ship with the package / scikit-learn
    return root
