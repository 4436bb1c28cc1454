"""ImageNet-style folders of class folders: `imagenet`, `imagenet100`, `imagefolder`.

On disk:
  imagenet     <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (the validation
               images sorted into class folders, as the usual `valprep.sh` does)
  imagenet100  the same ImageNet folders (or folders holding only the 100 classes),
               restricted to the 100 classes of a class list: option `class_list=PATH`
               (one wnid per line); default: the ImageNet-100 list of Tian et al.,
               "Contrastive Multiview Coding" (github.com/HobbitLong/CMC, imagenet100.txt),
               the list the unified-analysis paper cites for its Table 1.
  imagefolder  <root>/train/<class>/* and <root>/val/<class>/* (or <root>/test/<class>/*);
               or one folder of class folders, used for both splits (see `info.note`).
Labels are the sorted class folder names' indices (ImageFolder's convention); `info.classes`
keeps the folder names (wnids), which ImageNet-A / ImageNet-O evaluation needs.

Options: `image_size` (224; 64 with a crop scenario) and `crop`: None (standard
RandomResizedCrop + flip; eval resize 256 + centre crop 224), "large" or "small" (the
unified-analysis paper's Table 1 scenarios: random crops of 80-100 % / 25-40 % of the image
area resized to 64x64, + flip; eval: resize 73 + centre crop 64).
"""

from __future__ import annotations

from pathlib import Path

from msda_cli.checks import check_choice, check_int
from msda_cli.data import DatasetInfo, LabeledDataset, fail_missing, register_dataset, resolve_root
from msda_cli.data import transforms as T
from msda_cli.data.folder import ImageFiles, class_folders, scan_folder
from msda_cli.errors import MsdaError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET_URL = "https://image-net.org/download.php"

# ImageNet-100 (CMC, Tian et al. 2019): github.com/HobbitLong/CMC/blob/master/imagenet100.txt
CMC_IMAGENET100 = """
n02869837 n01749939 n02488291 n02107142 n13037406 n02091831 n04517823 n04589890 n03062245 n01773797
n01735189 n07831146 n07753275 n03085013 n04485082 n02105505 n01983481 n02788148 n03530642 n04435653
n02086910 n02859443 n13040303 n03594734 n02085620 n02099849 n01558993 n04493381 n02109047 n04111531
n02877765 n04429376 n02009229 n01978455 n02106550 n01820546 n01692333 n07714571 n02974003 n02114855
n03785016 n03764736 n03775546 n02087046 n07836838 n04099969 n04592741 n03891251 n02701002 n03379051
n02259212 n07715103 n03947888 n04026417 n02326432 n03637318 n01980166 n02113799 n02086240 n03903868
n02483362 n04127249 n02089973 n03017168 n02093428 n02804414 n02396427 n04418357 n02172182 n01729322
n02113978 n03787032 n02089867 n02119022 n03777754 n04238763 n02231487 n03032252 n02138441 n02104029
n03837869 n03494278 n04136333 n03794056 n03492542 n02018207 n04067472 n03930630 n03584829 n02123045
n04229816 n02100583 n03642806 n04336792 n03259280 n02116738 n02108089 n03424325 n01855672 n02090622
""".split()

CROPS = (None, "large", "small")


def _transform(name: str, train: bool, augment: bool, image_size, crop):
    crop = check_choice(f"{name} crop", crop, CROPS)
    if image_size is None:
        image_size = T.CROP_SCENARIO_SIZE if crop else 224
    image_size = check_int(f"{name} image_size", image_size, min=1)
    return T.imagenet_style(train and augment, image_size, crop=crop), image_size


def _no_download(name: str, where: str):
    raise MsdaError(f"{name} cannot be downloaded automatically; get it from {where} and pass its folder as --data-dir")


def _folder_dataset(name, split_dir: Path, classes, transform, size, mean, std, note="", require_all=True):
    """Images of `classes` in `split_dir`. An evaluation folder may lack some of the training
    classes (`require_all=False`); labels always index the full class list."""
    samples, empty = scan_folder(split_dir, classes)
    if not samples or (empty and require_all):
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        fail_missing(name, f"images of every class in {split_dir}/<class>/; {len(empty)} of {len(classes)} "
                           f"classes have none ({shown})", "Check --data-dir and the class list.")
    info = DatasetInfo(
        name=name, num_classes=len(classes), in_chans=3, image_size=size, mean=tuple(mean), std=tuple(std),
        classes=list(classes), note=note,
    )
    base = ImageFiles(samples, transform)
    return LabeledDataset(base, info, base.targets)


def _split_dirs(root: Path, train: bool, eval_names=("val",)) -> tuple[Path, Path | None]:
    """(folder of this split, training folder if present)."""
    if train:
        return root / "train", root / "train"
    for n in eval_names:
        if (root / n).is_dir():
            return root / n, root / "train"
    return root / eval_names[0], root / "train"


def _classes_of(split_dir: Path, train_dir: Path) -> list[str]:
    """Class folders of the training split (so both splits share labels), else of this split."""
    ref = train_dir if train_dir.is_dir() else split_dir
    classes = class_folders(ref)
    if not classes:
        raise MsdaError(f"no class folders in {ref}; expected {ref}/<class>/<images>")
    return classes


@register_dataset("imagenet", label="ImageNet")
def imagenet(root=None, train: bool = True, augment: bool = True, download: bool = False,
             image_size=None, crop=None) -> LabeledDataset:
    if download:
        _no_download("imagenet", IMAGENET_URL)
    transform, size = _transform("imagenet", train, augment, image_size, crop)
    root = resolve_root(root)
    split_dir, train_dir = _split_dirs(root, train)
    if not split_dir.is_dir():
        fail_missing("imagenet", f"{split_dir}/<wnid>/*.JPEG (ImageNet train/ and val/ sorted into class folders)",
                     f"Get ILSVRC2012 from {IMAGENET_URL}.")
    classes = _classes_of(split_dir, train_dir)
    return _folder_dataset("imagenet", split_dir, classes, transform, size, IMAGENET_MEAN, IMAGENET_STD,
                           require_all=train or split_dir == train_dir)


def read_class_list(path) -> list[str]:
    """wnids, one per line (blank lines and '#' comments ignored), without duplicates."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MsdaError(f"imagenet100: class list {path} not found (expected a text file with one wnid per line)")
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    if not names:
        raise MsdaError(f"imagenet100: class list {path} is empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MsdaError(f"imagenet100: class list {path} repeats {', '.join(dupes[:5])}")
    return names


@register_dataset("imagenet100", label="ImageNet-100")
def imagenet100(root=None, train: bool = True, augment: bool = True, download: bool = False,
                class_list=None, image_size=None, crop=None) -> LabeledDataset:
    if download:
        _no_download("imagenet100", IMAGENET_URL)
    transform, size = _transform("imagenet100", train, augment, image_size, crop)
    root = resolve_root(root)
    wnids = read_class_list(class_list) if class_list else list(CMC_IMAGENET100)
    classes = sorted(wnids)
    split_dir, _ = _split_dirs(root, train)
    if not split_dir.is_dir():
        fail_missing("imagenet100", f"{split_dir}/<wnid>/*.JPEG for the {len(classes)} classes of the class list "
                                    "(ImageNet train/ and val/ sorted into class folders)",
                     f"Get ILSVRC2012 from {IMAGENET_URL}.")
    return _folder_dataset("imagenet100", split_dir, classes, transform, size, IMAGENET_MEAN, IMAGENET_STD)


def _stats(name, option, value, default):
    if value is None:
        return default
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or (option == "std" and min(out) <= 0):
        raise MsdaError(f"{name}: option {option} must be three numbers (one per RGB channel), got {value!r}")
    return out


@register_dataset("imagefolder")
def imagefolder(root=None, train: bool = True, augment: bool = True, download: bool = False,
                image_size=None, crop=None, mean=None, std=None) -> LabeledDataset:
    if download:
        _no_download("imagefolder", "its source")
    mean = _stats("imagefolder", "mean", mean, IMAGENET_MEAN)
    std = _stats("imagefolder", "std", std, IMAGENET_STD)
    transform, size = _transform("imagefolder", train, augment, image_size, crop)
    if root in (None, ""):
        raise MsdaError("imagefolder needs --data-dir: a folder with train/ and val/ (or test/) class folders")
    root = resolve_root(root)
    if not root.is_dir():
        fail_missing("imagefolder", f"{root}/train/<class>/* and {root}/val/<class>/* (or one folder of class "
                                    "folders)", "Check --data-dir.")
    note = ""
    if (root / "train").is_dir():
        split_dir, train_dir = _split_dirs(root, train, eval_names=("val", "test"))
        if not split_dir.is_dir():
            fail_missing("imagefolder", f"{root}/val/<class>/* or {root}/test/<class>/* for evaluation",
                         "Add a held-out split beside train/.")
    else:
        split_dir = train_dir = root
        note = f"{root} has no train/ folder: its class folders serve as both training and test split"
    classes = _classes_of(split_dir, train_dir)
    return _folder_dataset("imagefolder", split_dir, classes, transform, size, mean, std, note,
                           require_all=train or split_dir == train_dir)
