"""CIFAR-10 and CIFAR-100 from the official "python version" pickle batches.

On disk (torchvision's layout, the extracted official archives):
  <root>/cifar-10-batches-py/{data_batch_1..data_batch_5, test_batch, batches.meta}
  <root>/cifar-100-python/{train, test, meta}
Read here rather than through `torchvision.datasets.CIFAR10/100`, which (1) reads the batches
with plain `pickle.load`, so a crafted batch in `--data-dir` runs code: this reader's
unpickler admits only what a batch holds (dicts, lists, strings, bytes, numbers, NumPy arrays
and their dtypes) and refuses anything else unrun; (2) md5-hashes every batch at each start
and rejects any copy that differs: here any file in the real format works; (3) fails with
tracebacks: here a missing, truncated or malformed file is one line naming it. `--data-dir`
may also point at the extracted folder itself. `download=True` lets torchvision fetch and
verify the archives (it then loads only the files whose md5 matches the official ones).
Train augmentation: random crop 32 with 4 px zero padding + horizontal flip.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from msda_cli.data import (
    DatasetInfo, LabeledDataset, TensorDataset, fail_missing, register_dataset, resolve_root,
)
from msda_cli.data import transforms as T
from msda_cli.errors import MsdaError

try:  # NumPy >= 2 (a batch pickled by NumPy 1 names numpy.core, one by NumPy 2 numpy._core)
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - NumPy 1
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

_SPECS = {
    "cifar10": dict(
        folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
        meta="batches.meta", names_key="label_names", labels_key="labels", num_classes=10,
        mean=CIFAR10_MEAN, std=CIFAR10_STD, url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": dict(
        folder="cifar-100-python", train=["train"], test=["test"],
        meta="meta", names_key="fine_label_names", labels_key="fine_labels", num_classes=100,
        mean=CIFAR100_MEAN, std=CIFAR100_STD, url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
}


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """How a protocol-2 pickle written by Python 3 spells bytes: `_codecs.encode(text, "latin1")`."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# The only globals a CIFAR batch names: NumPy's array reconstruction (pickle protocols 2-4, and 5's
# buffer form), the dtype, and bytes under protocol 2. Dicts, lists, strings and ints are opcodes.
_BATCH_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that looks up no global outside `_BATCH_GLOBALS`: a crafted file's code (a
    `__reduce__` naming os.system, say) is refused before anything of it runs."""

    def find_class(self, module: str, name: str):
        try:
            return _BATCH_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no CIFAR batch holds; "
                                         "refused without running it") from None


def _unpickle(name: str, path: Path, keys: tuple[str, ...]) -> dict:
    """The dict pickled in `path`, which must hold `keys`; MsdaError (one line) otherwise."""
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, encoding="latin1").load()  # latin1: the official batches are Python 2's
    except Exception as e:  # truncated download, wrong file, a refused global ...
        raise MsdaError(f"{name}: cannot read {path}: {' '.join(str(e).split()) or type(e).__name__}") from None
    if not isinstance(obj, dict):
        raise MsdaError(f"{name}: {path} is not a CIFAR batch (a dict with {', '.join(keys)}; "
                        f"it holds a {type(obj).__name__})")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise MsdaError(f"{name}: {path} is not a CIFAR batch (no {', '.join(missing)} among its keys "
                        f"{', '.join(sorted(map(str, obj)))[:200]})")
    return obj


def _download(name: str, root: Path, train: bool) -> None:
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    try:
        cls(str(root), train=train, download=True)
    except Exception as e:
        raise MsdaError(f"{name}: download into {root} failed ({type(e).__name__}: {e})") from None


def read_cifar(name: str, root, train: bool, download: bool = False):
    """uint8 images [N, 3, 32, 32], int64 labels [N], class names."""
    spec = _SPECS[name]
    root = resolve_root(root)
    if download:
        _download(name, root, train)
    folder = root / spec["folder"]
    if not folder.is_dir() and (root / spec["meta"]).is_file():
        folder = root  # --data-dir points at the extracted folder itself
    files = spec["train" if train else "test"] + [spec["meta"]]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        fail_missing(
            name, f"{folder}/ with {', '.join(files)}"
                  + (f" (missing: {', '.join(missing)})" if len(missing) < len(files) else ""),
            f"Run with --download on a machine with internet, or extract {spec['url']} into {root}.",
        )
    images, labels = [], []
    for f in spec["train" if train else "test"]:
        batch = _unpickle(name, folder / f, ("data", spec["labels_key"]))
        try:
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[spec["labels_key"]], dtype=np.int64).reshape(-1))
        except (TypeError, ValueError) as e:
            raise MsdaError(f"{name}: {folder / f} is not a CIFAR batch ({' '.join(str(e).split())})") from None
    names = _unpickle(name, folder / spec["meta"], (spec["names_key"],))[spec["names_key"]]
    if not isinstance(names, list) or len(names) != spec["num_classes"]:
        raise MsdaError(f"{name}: {folder / spec['meta']} does not list the {spec['num_classes']} class names "
                        f"under {spec['names_key']}")
    classes = [str(c) for c in names]
    x = torch.from_numpy(np.concatenate(images))
    y = torch.from_numpy(np.concatenate(labels))
    if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() >= spec["num_classes"])):
        raise MsdaError(f"{name}: labels in {folder} do not match the images or the {spec['num_classes']} classes")
    return x, y, classes


def _build(name: str, root, train: bool, augment: bool, download: bool) -> LabeledDataset:
    spec = _SPECS[name]
    x, y, classes = read_cifar(name, root, train, download)
    info = DatasetInfo(
        name=name, num_classes=spec["num_classes"], in_chans=3, image_size=32,
        mean=spec["mean"], std=spec["std"], classes=classes,
    )
    transform = T.SmallImage(train and augment, 32, padding=4, flip=True)
    return LabeledDataset(TensorDataset(x, y, transform), info, y)


@register_dataset("cifar10", label="CIFAR-10")
def cifar10(root=None, train: bool = True, augment: bool = True, download: bool = False) -> LabeledDataset:
    return _build("cifar10", root, train, augment, download)


@register_dataset("cifar100", label="CIFAR-100")
def cifar100(root=None, train: bool = True, augment: bool = True, download: bool = False) -> LabeledDataset:
    return _build("cifar100", root, train, augment, download)
