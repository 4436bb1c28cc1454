"""Tiny-ImageNet-200 in its official layout (the extracted `tiny-imagenet-200.zip`).

On disk: <root>/tiny-imagenet-200/ (or <root> itself) with
  wnids.txt                           the 200 class wnids
  train/<wnid>/images/*.JPEG          500 training images per class
  val/images/*.JPEG + val/val_annotations.txt   (file, wnid, box) per line, tab separated
(a val/ already sorted into val/<wnid>/ folders works too). The unlabeled test/ is unused.
Labels: index of the wnid in sorted(wnids); `info.classes` keeps the wnids. 64 px RGB.
Train augmentation: random crop 64 with 4 px zero padding + horizontal flip.
"""

from __future__ import annotations

from pathlib import Path

from msda_cli.data import DatasetInfo, LabeledDataset, fail_missing, register_dataset, resolve_root
from msda_cli.data import transforms as T
from msda_cli.data.folder import ImageFiles, class_folders, image_files, scan_folder
from msda_cli.errors import MsdaError

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
FOLDER = "tiny-imagenet-200"
# per-channel statistics of the Tiny-ImageNet training images
TINY_MEAN, TINY_STD = (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)


def _locate(root: Path) -> Path:
    for cand in (root / FOLDER, root):
        if (cand / "train").is_dir() or (cand / "wnids.txt").is_file():
            return cand
    return root / FOLDER


def _val_samples(base: Path, index: dict[str, int]) -> list[tuple[Path, int]]:
    val = base / "val"
    ann = val / "val_annotations.txt"
    if not ann.is_file():
        if val.is_dir() and class_folders(val):  # already sorted into class folders
            samples, _ = scan_folder(val, sorted(index, key=index.get))
            return samples
        fail_missing("tiny-imagenet", f"{ann} and {val}/images/*.JPEG",
                     f"Run with --download on a machine with internet, or extract {URL} into {base.parent}.")
    samples = []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        fields = line.strip().split("\t") if "\t" in line else line.split()
        if not fields or not fields[0]:
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise MsdaError(f"tiny-imagenet: {ann} line {n}: expected 'file<TAB>wnid<TAB>box', "
                            f"with a wnid of the training classes; got {line.strip()!r}")
        path = val / "images" / fields[0]
        if not path.is_file():
            raise MsdaError(f"tiny-imagenet: {ann} line {n} names {path}, which does not exist")
        samples.append((path, index[fields[1]]))
    return samples


@register_dataset("tiny-imagenet", label="Tiny-ImageNet")
def tiny_imagenet(root=None, train: bool = True, augment: bool = True, download: bool = False) -> LabeledDataset:
    root = resolve_root(root)
    if download and not (_locate(root) / "train").is_dir():
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(URL, str(root))
        except Exception as e:
            raise MsdaError(f"tiny-imagenet: download into {root} failed ({type(e).__name__}: {e})") from None
    base = _locate(root)
    train_dir = base / "train"
    if not train_dir.is_dir():
        fail_missing("tiny-imagenet", f"{train_dir}/<wnid>/images/*.JPEG, {base}/val/val_annotations.txt and "
                                      f"{base}/val/images/*.JPEG",
                     f"Run with --download on a machine with internet, or extract {URL} into {root}.")
    wnids_file = base / "wnids.txt"
    wnids = wnids_file.read_text().split() if wnids_file.is_file() else class_folders(train_dir)
    classes = sorted(set(wnids))
    index = {w: i for i, w in enumerate(classes)}
    if train:
        samples, empty = [], []
        for w in classes:
            folder = train_dir / w / "images"
            files = image_files(folder if folder.is_dir() else train_dir / w)
            if not files:
                empty.append(w)
            samples.extend((f, index[w]) for f in files)
        if empty:
            fail_missing("tiny-imagenet", f"{train_dir}/<wnid>/images/*.JPEG for every wnid; none for "
                                          f"{', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}",
                         f"Re-extract {URL}.")
    else:
        samples = _val_samples(base, index)
    transform = T.SmallImage(train and augment, 64, padding=4, flip=True)
    info = DatasetInfo(
        name="tiny-imagenet", num_classes=len(classes), in_chans=3, image_size=64, mean=TINY_MEAN, std=TINY_STD,
        classes=classes,
    )
    ds = ImageFiles(samples, transform)
    return LabeledDataset(ds, info, ds.targets)
