"""MNIST and Fashion-MNIST from the raw idx files, read by torchvision's `MNIST`/`FashionMNIST`.

On disk (torchvision's layout, the official files un-gzipped):
  <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
  <root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
1 channel, 28 px. Train augmentation: random crop 28 with 2 px zero padding; plus a
horizontal flip for Fashion-MNIST (clothes), none for MNIST (digits). Added here: the files
expected are named in one line when missing, and `--data-dir` may point at <root>/MNIST itself.
"""

from __future__ import annotations

from msda_cli.data import (
    DatasetInfo, LabeledDataset, TensorDataset, fail_missing, register_dataset, resolve_root,
)
from msda_cli.data import transforms as T
from msda_cli.errors import MsdaError

_SPECS = {
    "mnist": dict(cls="MNIST", mean=(0.1307,), std=(0.3081,), flip=False,
                  url="https://yann.lecun.com/exdb/mnist/ "
                      "(or a mirror such as https://ossci-datasets.s3.amazonaws.com/mnist/)"),
    "fashion-mnist": dict(cls="FashionMNIST", mean=(0.2860,), std=(0.3530,), flip=True,
                          url="https://github.com/zalandoresearch/fashion-mnist"),
}


def _build(name: str, root, train: bool, augment: bool, download: bool) -> LabeledDataset:
    import torchvision.datasets as tvd

    spec = _SPECS[name]
    cls = getattr(tvd, spec["cls"])
    root = resolve_root(root)
    if root.name == spec["cls"] and not (root / spec["cls"]).is_dir():
        root = root.parent  # --data-dir points at <root>/MNIST itself
    prefix = "train" if train else "t10k"
    raw = root / spec["cls"] / "raw"
    files = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    if not download and not all((raw / f).is_file() for f in files):
        fail_missing(
            name, f"{raw}/ with {', '.join(files)} (un-gzipped idx files)",
            f"Run with --download on a machine with internet, or get them from {spec['url']} and gunzip them there.",
        )
    try:
        base = cls(str(root), train=train, download=download)
    except Exception as e:
        what = "download" if download else "reading"
        raise MsdaError(f"{name}: {what} in {raw} failed ({type(e).__name__}: {e})") from None
    x = base.data.unsqueeze(1).contiguous()  # uint8 [N, 1, 28, 28]
    size = int(x.shape[-1])
    y = base.targets.long()
    info = DatasetInfo(
        name=name, num_classes=10, in_chans=1, image_size=size, mean=spec["mean"], std=spec["std"],
        classes=list(base.classes),
    )
    transform = T.SmallImage(train and augment, size, padding=2, flip=spec["flip"])
    return LabeledDataset(TensorDataset(x, y, transform), info, y)


@register_dataset("mnist", label="MNIST")
def mnist(root=None, train: bool = True, augment: bool = True, download: bool = False) -> LabeledDataset:
    return _build("mnist", root, train, augment, download)


@register_dataset("fashion-mnist", label="Fashion-MNIST")
def fashion_mnist(root=None, train: bool = True, augment: bool = True, download: bool = False) -> LabeledDataset:
    return _build("fashion-mnist", root, train, augment, download)
