"""The data-set registry: every family built from small files in its real on-disk format."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import query
from msda_cli.data import DATASETS, build_dataset, check_dataset_options
from msda_cli.data.imagenet import CMC_IMAGENET100
from msda_cli.errors import MsdaError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent")


# ----- writers of the real formats ----------------------------------------------------


def pattern_images(n: int, c: int, h: int, w: int, offset: int = 0) -> np.ndarray:
    """uint8 [n, c, h, w] images, asymmetric (no flip or shift maps one onto another)."""
    i, ch, y, x = np.meshgrid(np.arange(n), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((i * 37 + ch * 71 + y * 13 + x * 5 + (x * y) % 7 + offset) % 251 + 2).astype(np.uint8)


def write_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 6):
    folder = root / "cifar-10-batches-py"
    images, labels = [], []
    for b in range(1, 6):
        x = pattern_images(per_batch, 3, 32, 32, offset=b * 11)
        y = [(b + k) % 10 for k in range(per_batch)]
        write_pickle(folder / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5",
                                                  "labels": y, "data": x.reshape(per_batch, -1),
                                                  "filenames": [f"img{k}.png" for k in range(per_batch)]})
        images.append(x)
        labels += y
    xt = pattern_images(n_test, 3, 32, 32, offset=200)
    yt = [k % 10 for k in range(n_test)]
    write_pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": yt,
                                         "data": xt.reshape(n_test, -1), "filenames": []})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_pickle(folder / "batches.meta", {"num_cases_per_batch": per_batch, "label_names": names,
                                           "num_vis": 3072})
    return np.concatenate(images), labels, xt, yt, names


def write_cifar100(root: Path, n_train: int = 7, n_test: int = 3):
    folder = root / "cifar-100-python"
    x, xt = pattern_images(n_train, 3, 32, 32), pattern_images(n_test, 3, 32, 32, offset=9)
    y, yt = [(17 * k) % 100 for k in range(n_train)], [99 - k for k in range(n_test)]
    write_pickle(folder / "train", {"filenames": [], "batch_label": "training batch 1 of 1", "fine_labels": y,
                                    "coarse_labels": [v // 5 for v in y], "data": x.reshape(n_train, -1)})
    write_pickle(folder / "test", {"filenames": [], "batch_label": "testing batch 1 of 1", "fine_labels": yt,
                                   "coarse_labels": [v // 5 for v in yt], "data": xt.reshape(n_test, -1)})
    names = [f"fine{k}" for k in range(100)]
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": [f"c{k}" for k in range(20)]})
    return x, y, xt, yt, names


def write_svhn(root: Path, split: str, n: int):
    from scipy.io import savemat

    x = pattern_images(n, 3, 32, 32, offset=len(split))  # [n, 3, h, w]
    y = np.array([(k % 10) + 1 for k in range(n)], dtype=np.uint8)  # 1..10, 10 means digit 0
    root.mkdir(parents=True, exist_ok=True)
    savemat(root / f"{split}_32x32.mat", {"X": np.transpose(x, (2, 3, 1, 0)), "y": y[:, None]})
    return x, y % 10


def write_idx(raw: Path, prefix: str, n: int, offset: int = 0):
    raw.mkdir(parents=True, exist_ok=True)
    x = pattern_images(n, 1, 28, 28, offset=offset)[:, 0]
    y = np.arange(n, dtype=np.uint8) % 10
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + y.tobytes())
    return x, y


def write_png(path: Path, h: int = 40, w: int = 52, seed: int = 0, fmt: str = "PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return arr


def write_class_folders(split_dir: Path, classes, per_class: int = 2, **kw):
    for ci, name in enumerate(classes):
        for k in range(per_class):
            write_png(split_dir / name / f"{name}_{k}.png", seed=100 * ci + k, **kw)


@pytest.fixture
def root(tmp_path) -> Path:
    """A fresh data folder (tmp_path itself holds the isolated results/ folder)."""
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def is_shift_of(out: torch.Tensor, ref: torch.Tensor, pad: int) -> bool:
    """`out` equals `ref` translated by some (dy, dx) within `pad` (zero fill outside)."""
    c, h, w = ref.shape
    padded = torch.nn.functional.pad(ref, (pad, pad, pad, pad))
    return any(torch.equal(padded[:, dy:dy + h, dx:dx + w], out)
               for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


# ----- registry, options -----------------------------------------------------------------


def test_registered_names():
    expected = {"digits", "cifar10", "cifar100", "svhn", "mnist", "fashion-mnist", "tiny-imagenet", "imagenet",
                "imagenet100", "imagefolder", "tabular", "abalone", "iris", "wine", "breast-cancer"}
    assert expected <= set(DATASETS)


def test_unknown_name_and_options_are_msda_errors():
    with pytest.raises(MsdaError, match="cifar100"):
        build_dataset("cifar1000")
    with pytest.raises(MsdaError, match=r"'colour'.*valid options: .*crop.*image_size"):
        check_dataset_options("imagenet100", {"colour": 1})
    with pytest.raises(MsdaError, match="valid options: image_size"):
        build_dataset("digits", image_size=16, crop="large")
    with pytest.raises(MsdaError, match="unknown imagefolder crop 'medium'; choose from: None, large, small"):
        here = Path(__file__).parent  # an existing folder without class folders: the option is checked first
        build_dataset("imagefolder", root=here, crop="medium")


def test_digits_split_sizes_stratified_deterministic():
    tr, te = build_dataset("digits"), build_dataset("digits", train=False)
    assert (len(tr), len(te)) == (1437, 360)
    assert tr[0][0].shape == (1, 32, 32) and 0 <= tr.base.x.min() and tr.base.x.max() <= 1
    per_class = tr.targets.bincount() + te.targets.bincount()
    assert torch.all((te.targets.bincount().float() - 0.2 * per_class).abs() <= 1)
    again = build_dataset("digits", train=False)
    assert torch.equal(again.base.x, te.base.x) and torch.equal(again.targets, te.targets)
    assert build_dataset("digits", image_size=8)[0][0].shape == (1, 8, 8)


# ----- CIFAR ---------------------------------------------------------------------------


def test_cifar10_reads_the_pickle_batches(root):
    x, y, xt, yt, names = write_cifar10(root)
    tr = build_dataset("cifar10", root=root, train=True, augment=False)
    te = build_dataset("cifar10", root=root, train=False)
    assert (len(tr), len(te)) == (20, 6)
    assert tr.targets.tolist() == y and te.targets.tolist() == yt
    assert tr.info.classes == names and tr.info.num_classes == 10 and tr.info.in_chans == 3
    assert tr.info.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-3)
    img, label = tr[7]
    assert img.dtype == torch.float32 and img.shape == (3, 32, 32) and label == y[7]
    assert torch.allclose(img, torch.from_numpy(x[7]).float() / 255, atol=1e-7, rtol=0)  # channel planes, row-major
    assert torch.allclose(te[5][0], torch.from_numpy(xt[5]).float() / 255, atol=1e-7, rtol=0)


def test_cifar_train_augmentation_is_padded_crop_and_flip(root):
    write_cifar10(root)
    aug = build_dataset("cifar10", root=root, train=True)
    plain = build_dataset("cifar10", root=root, train=False)
    ref = build_dataset("cifar10", root=root, train=True, augment=False)[3][0]
    torch.manual_seed(0)
    draws = [aug[3][0] for _ in range(40)]
    assert all(d.min() >= 0 and d.max() <= 1 and d.shape == (3, 32, 32) for d in draws)
    assert any(not torch.equal(d, ref) for d in draws)
    shifted = [is_shift_of(d, ref, 4) for d in draws]
    flipped = [is_shift_of(d, ref.flip(-1), 4) for d in draws]
    assert all(s or f for s, f in zip(shifted, flipped)) and any(flipped) and any(shifted)
    assert torch.equal(plain[2][0], plain[2][0])


def test_cifar100_fine_labels_and_names(root):
    x, y, xt, yt, names = write_cifar100(root)
    tr = build_dataset("cifar100", root=root, augment=False)
    te = build_dataset("cifar100", root=root, train=False)
    assert (len(tr), len(te)) == (7, 3) and tr.info.num_classes == 100 and tr.info.classes == names
    assert tr.targets.tolist() == y and te.targets.tolist() == yt
    assert torch.allclose(te[1][0], torch.from_numpy(xt[1]).float() / 255, atol=1e-7, rtol=0)
    # --data-dir may also point at the extracted folder itself
    assert len(build_dataset("cifar100", root=root / "cifar-100-python", train=False)) == 3


def test_cifar_download_goes_through_torchvision(root, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR10:  # stands in for the network: "downloads" by writing the files
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            write_cifar10(Path(root))

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    ds = build_dataset("cifar10", root=root, train=False, download=True)
    assert calls == [(str(root), False, True)] and len(ds) == 6

    class Offline:
        def __init__(self, *a, **k):
            raise RuntimeError("no network")

    monkeypatch.setattr(tvd, "CIFAR100", Offline)
    with pytest.raises(MsdaError, match="download .*failed.*no network"):
        build_dataset("cifar100", root=root / "x", download=True)


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_and_numpy_1_read_alike(root, protocol):
    x, y, *_ = write_cifar100(root)
    folder = root / "cifar-100-python"
    batch = {"filenames": [b"a.png"], "batch_label": "training batch 1 of 1", "fine_labels": y,
             "coarse_labels": np.asarray(y) // 5, "data": x.reshape(len(y), -1)}
    raw = pickle.dumps(batch, protocol=protocol)
    if protocol in (0, 2):  # as NumPy 1 (the official files) names the array reconstructor
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    (folder / "train").write_bytes(raw)
    tr = build_dataset("cifar100", root=root, augment=False)
    assert tr.targets.tolist() == y and torch.equal(tr.base.x, torch.from_numpy(x))


class _MakesADirectory:
    """A crafted batch entry: unpickling it with plain `pickle.load` creates `path`."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        import os

        return os.mkdir, (str(self.path),)


@pytest.mark.parametrize("case", ["code", "list", "no labels", "data not an array", "truncated", "meta names"])
def test_crafted_or_malformed_cifar_batch_is_one_line_exit_2_and_runs_nothing(root, tmp_path, msda, db_path, case):
    x, y, *_ = write_cifar10(root)
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    made = tmp_path / "made-by-the-batch"
    payload = {
        "code": {"labels": y[:4], "data": _MakesADirectory(made)},
        "list": [x[:4].reshape(4, -1), y[:4]],
        "no labels": {"data": x[:4].reshape(4, -1), "fine_labels": y[:4]},
        "data not an array": {"data": {"pixels": 1}, "labels": y[:4]},
    }.get(case)
    if case == "code":  # the payload works: torchvision's plain pickle.load would have run it
        proof = tmp_path / "proof"
        pickle.loads(pickle.dumps({"data": _MakesADirectory(proof)}, protocol=2))
        assert proof.is_dir()
    if payload is not None:
        write_pickle(batch, payload)
    elif case == "truncated":
        batch.write_bytes(batch.read_bytes()[:300])
    else:
        write_pickle(root / "cifar-10-batches-py" / "batches.meta", {"label_names": "airplane"})
    r = msda("train", "--recipe", "cifar10-vanilla", "--data-dir", root, "--epochs", "1")
    lines = r.stderr.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cifar10" in lines[0] and ("batches.meta" if case == "meta names" else "data_batch_1") in lines[0]
    if case == "code":
        assert "posix.mkdir" in lines[0] and "refused" in lines[0]
    assert not made.exists()
    assert not db_path.exists() or query(db_path, "SELECT count(*) FROM run") == [(0,)]


# ----- SVHN, MNIST ---------------------------------------------------------------------


def test_svhn_mat_files_label_10_is_0_and_no_flip(root):
    x, y = write_svhn(root, "train", 12)
    xt, yt = write_svhn(root, "test", 5)
    xe, ye = write_svhn(root, "extra", 3)
    tr = build_dataset("svhn", root=root, augment=False)
    te = build_dataset("svhn", root=root, train=False)
    assert (len(tr), len(te)) == (12, 5) and len(build_dataset("svhn", root=root, extra=True)) == 15
    assert tr.targets.tolist() == y.tolist() and 0 in tr.targets.tolist() and tr.targets.max() == 9
    assert torch.allclose(tr[4][0], torch.from_numpy(x[4]).float() / 255, atol=1e-7, rtol=0)
    assert torch.allclose(te[2][0], torch.from_numpy(xt[2]).float() / 255, atol=1e-7, rtol=0)
    aug = build_dataset("svhn", root=root)
    torch.manual_seed(1)
    draws = [aug[4][0] for _ in range(25)]
    assert all(is_shift_of(d, tr[4][0], 4) for d in draws) and any(not torch.equal(d, tr[4][0]) for d in draws)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files(root, name, folder):
    x, y = write_idx(root / folder / "raw", "train", 11)
    xt, yt = write_idx(root / folder / "raw", "t10k", 4, offset=3)
    tr = build_dataset(name, root=root, augment=False)
    te = build_dataset(name, root=root / folder, train=False)  # the MNIST folder itself works too
    assert (len(tr), len(te)) == (11, 4) and tr.info.in_chans == 1 and tr.info.image_size == 28
    assert tr.targets.tolist() == y.tolist() and len(tr.info.classes) == 10
    assert torch.allclose(te[3][0], torch.from_numpy(xt[3]).float()[None] / 255, atol=1e-7, rtol=0)
    aug = build_dataset(name, root=root)
    torch.manual_seed(2)
    draws = [aug[5][0] for _ in range(25)]
    ref = tr[5][0]
    assert all(d.shape == (1, 28, 28) for d in draws) and any(not torch.equal(d, ref) for d in draws)
    flips = [is_shift_of(d, ref.flip(-1), 2) and not is_shift_of(d, ref, 2) for d in draws]
    assert any(flips) == (name == "fashion-mnist")  # digits are never mirrored


# ----- image folders -------------------------------------------------------------------


def test_imagefolder_train_val_transforms(root):
    write_class_folders(root / "train", ["cat", "dog", "eel"], per_class=3)
    write_class_folders(root / "val", ["cat", "eel"], per_class=1)  # a class missing from val
    tr = build_dataset("imagefolder", root=root)
    te = build_dataset("imagefolder", root=root, train=False)
    assert tr.info.classes == ["cat", "dog", "eel"] and len(tr) == 9
    assert tr.targets.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert len(te) == 2 and te.targets.tolist() == [0, 2] and te.info.num_classes == 3  # labels of the train classes
    x, label = te[1]
    assert x.shape == (3, 224, 224) and label == 2 and type(x) is torch.Tensor
    assert torch.equal(x, te[1][0]) and 0 <= x.min() and x.max() <= 1
    torch.manual_seed(3)
    a, b = tr[0][0], tr[0][0]
    assert a.shape == (3, 224, 224) and not torch.equal(a, b)
    assert te.info.note == ""


def test_imagefolder_single_folder_serves_both_splits_with_a_note(root):
    write_class_folders(root, ["a", "b"], per_class=2)
    tr = build_dataset("imagefolder", root=root, train=True)
    te = build_dataset("imagefolder", root=root, train=False, image_size=32)
    assert len(tr) == len(te) == 4 and "both" in te.info.note and te[0][0].shape == (3, 32, 32)


def test_imagefolder_test_folder_is_used_when_no_val(root):
    write_class_folders(root / "train", ["a", "b"], per_class=1)
    write_class_folders(root / "test", ["b"], per_class=2)
    te = build_dataset("imagefolder", root=root, train=False)
    assert te.targets.tolist() == [1, 1]


def crop_fraction(x: torch.Tensor) -> float:
    """Area fraction of the source seen in `x`: channel 0 encodes the column, channel 1 the row."""
    w = (x[0].max() - x[0].min()).item()
    h = (x[1].max() - x[1].min()).item()
    return w * h


@pytest.mark.parametrize("crop, low, high", [("large", 0.80, 1.00), ("small", 0.25, 0.40)])
def test_crop_scenarios_of_table1(root, crop, low, high):
    size = 256
    ramp = np.linspace(0, 255, size)
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[..., 0] = np.round(ramp)[None, :]  # column
    arr[..., 1] = np.round(ramp)[:, None]  # row
    for wnid in ("n01440764", "n01443537"):
        for split in ("train", "val"):
            (root / split / wnid).mkdir(parents=True)
            Image.fromarray(arr).save(root / split / wnid / "a.png")
    lst = root / "classes.txt"
    lst.write_text("n01440764\nn01443537\n")
    tr = build_dataset("imagenet100", root=root, class_list=lst, crop=crop)
    te = build_dataset("imagenet100", root=root, class_list=lst, crop=crop, train=False)
    assert tr.info.image_size == te.info.image_size == 64
    torch.manual_seed(4)
    fractions = []
    for _ in range(30):
        x = tr[0][0]
        assert x.shape == (3, 64, 64)
        fractions.append(crop_fraction(x))
    assert min(fractions) >= low - 0.05 and max(fractions) <= high + 0.02
    assert max(fractions) - min(fractions) > 0.03  # random sizes across the range
    ev = te[0][0]
    assert ev.shape == (3, 64, 64) and torch.equal(ev, te[0][0])
    assert crop_fraction(ev) == pytest.approx(0.875**2, abs=0.04)  # resize 73, centre crop 64


def test_imagenet_keeps_wnid_folders(root):
    wnids = ["n01440764", "n01443537", "n01484850"]
    write_class_folders(root / "train", wnids, per_class=1, fmt="JPEG")
    write_class_folders(root / "val", wnids, per_class=1, fmt="JPEG")
    te = build_dataset("imagenet", root=root, train=False)
    assert te.info.classes == wnids and te.info.mean == (0.485, 0.456, 0.406) and te.targets.tolist() == [0, 1, 2]
    assert te[2][0].shape == (3, 224, 224)


def test_imagenet100_restricts_to_the_class_list(root):
    write_class_folders(root / "train", ["n03", "n01", "n02", "n09"], per_class=1, h=20, w=20)
    lst = root / "list.txt"
    lst.write_text("# three classes\nn03\nn01\n\nn02\n")
    tr = build_dataset("imagenet100", root=root, class_list=lst, image_size=32)
    assert tr.info.classes == ["n01", "n02", "n03"] and len(tr) == 3 and tr.targets.tolist() == [0, 1, 2]
    lst.write_text("n01\nn05\n")
    with pytest.raises(MsdaError, match="n05"):
        build_dataset("imagenet100", root=root, class_list=lst)
    with pytest.raises(MsdaError, match="nope.txt"):
        build_dataset("imagenet100", root=root, class_list=root / "nope.txt")


def test_imagenet100_default_list_is_cmc(root):
    assert len(CMC_IMAGENET100) == len(set(CMC_IMAGENET100)) == 100
    assert CMC_IMAGENET100[:3] == ["n02869837", "n01749939", "n02488291"] and CMC_IMAGENET100[-1] == "n02090622"
    for k, wnid in enumerate(CMC_IMAGENET100):
        write_png(root / "val" / wnid / "x.png", h=4, w=4, seed=k)
    write_png(root / "val" / "n99999999" / "x.png", h=4, w=4)  # not in the list
    te = build_dataset("imagenet100", root=root, train=False, image_size=8)
    assert te.info.num_classes == 100 and len(te) == 100 and te.info.classes == sorted(CMC_IMAGENET100)


def write_tiny_imagenet(root: Path, wnids=("n02", "n01", "n03"), per_class=2):
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for ci, w in enumerate(wnids):
        for k in range(per_class):
            write_png(base / "train" / w / "images" / f"{w}_{k}.JPEG", 64, 64, seed=ci * 10 + k, fmt="JPEG")
        (base / "train" / w / f"{w}_boxes.txt").write_text("")
    val_wnids = ["n03", "n01", "n03", "n02"]
    lines = []
    for k, w in enumerate(val_wnids):
        write_png(base / "val" / "images" / f"val_{k}.JPEG", 64, 64, seed=50 + k, fmt="JPEG")
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return base, val_wnids


def test_tiny_imagenet_official_layout(root):
    base, val_wnids = write_tiny_imagenet(root)
    tr = build_dataset("tiny-imagenet", root=root)
    te = build_dataset("tiny-imagenet", root=base, train=False)  # the extracted folder itself works too
    assert tr.info.classes == ["n01", "n02", "n03"] and tr.info.image_size == 64
    assert len(tr) == 6 and sorted(tr.targets.tolist()) == [0, 0, 1, 1, 2, 2]
    assert te.targets.tolist() == [{"n01": 0, "n02": 1, "n03": 2}[w] for w in val_wnids]
    x = te[1][0]
    ref = torch.from_numpy(np.array(Image.open(base / "val" / "images" / "val_1.JPEG").convert("RGB")))
    assert x.shape == (3, 64, 64) and torch.allclose(x, ref.permute(2, 0, 1).float() / 255, atol=1e-7, rtol=0)
    torch.manual_seed(5)
    draws = [tr[0][0] for _ in range(10)]
    assert all(d.shape == (3, 64, 64) for d in draws) and any(not torch.equal(d, draws[0]) for d in draws)
    bad = base / "val" / "val_annotations.txt"
    bad.write_text("val_0.JPEG\tn77\t0\t0\t1\t1\n")
    with pytest.raises(MsdaError, match="n77"):
        build_dataset("tiny-imagenet", root=root, train=False)


# ----- missing data --------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"), ("svhn", "train_32x32.mat"),
    ("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw"), ("tiny-imagenet", "val_annotations.txt"),
    ("imagenet", "train/<wnid>"), ("imagenet100", "train/<wnid>"), ("imagefolder", "train/<class>"),
    ("abalone", "abalone.csv"),
])
def test_missing_data_names_the_expected_path(root, name, expected):
    root = root / "nowhere"
    with pytest.raises(MsdaError) as err:
        build_dataset(name, root=root)
    msg = str(err.value)
    assert str(root) in msg and expected in msg and "\n" not in msg


def test_missing_csv_and_download_of_unfetchable_sets(root):
    with pytest.raises(MsdaError, match=str(root / "x.csv")):
        build_dataset("tabular", path=root / "x.csv")
    with pytest.raises(MsdaError, match="image-net.org"):
        build_dataset("imagenet", root=root, download=True)
    assert len(build_dataset("iris", download=True)) == 120  # bundled sets need no download


# ----- tabular -------------------------------------------------------------------------


def test_tabular_csv_one_hot_missing_values_and_split(root):
    rng = np.random.default_rng(0)
    n = 50
    df = pd.DataFrame({
        "size": rng.normal(10, 3, n), "colour": rng.choice(["red", "blue", "green"], n),
        "count": rng.integers(0, 5, n).astype(float), "kind": ["x", "y"] * 25,
    })
    df.loc[3, "size"] = np.nan
    df.loc[4, "colour"] = np.nan
    path = root / "t.csv"
    df.to_csv(path, index=False)
    tr = build_dataset("tabular", path=path, label="kind")
    te = build_dataset("tabular", path=path, label=3, train=False)
    assert (len(tr), len(te)) == (40, 10) and tr.info.classes == ["x", "y"]
    assert tr.targets.bincount().tolist() == [20, 20] and te.targets.bincount().tolist() == [5, 5]
    assert tr.info.in_chans == 5 and tr.info.image_size == 0 and not tr.info.is_image  # size, 3 colours, count
    assert tr.info.mean == (0.0,) * 5 and tr.info.std == (1.0,) * 5
    x = tr.base.x
    assert not torch.isnan(x).any() and torch.isfinite(te.base.x).all()
    assert x[:, [0, 4]].mean(0).abs().max() < 1e-5 and (x[:, [0, 4]].std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert set(x[:, 1:4].unique().tolist()) == {0.0, 1.0} and torch.all(x[:, 1:4].sum(1) == 1)
    assert torch.equal(build_dataset("tabular", root=root, path="t.csv", label="kind").base.x, x)  # path under root
    xi, yi = tr[0]
    assert xi.shape == (5,) and isinstance(yi, int)
    with pytest.raises(MsdaError, match="columns: size, colour, count, kind"):
        build_dataset("tabular", path=path, label="Class")


@needs_shared
def test_tabular_optdigits_from_shared_data():
    tra, tes = SHARED_DATA / "optdigits" / "optdigits.tra.csv", SHARED_DATA / "optdigits" / "optdigits.tes.csv"
    tr = build_dataset("tabular", path=tra, label="Class")
    te = build_dataset("tabular", root=tra, label="Class", train=False)
    assert (len(tr), len(te)) == (3058, 765) and tr.info.in_chans == 64
    assert tr.info.classes == [str(d) for d in range(10)]
    raw = pd.read_csv(tra)
    counts = raw["Class"].value_counts().sort_index().to_numpy()
    assert np.abs(te.targets.bincount().numpy() - 0.2 * counts).max() <= 1
    both = build_dataset("tabular", path=tra, test_path=tes, label="Class", train=False)
    assert len(both) == 1797 and both.targets.tolist() == pd.read_csv(tes)["Class"].tolist()


@needs_shared
def test_abalone_three_classes_from_shared_data():
    csv = SHARED_DATA / "uci" / "abalone.csv"
    tr = build_dataset("abalone", root=csv.parent)
    te = build_dataset("abalone", root=csv, train=False)
    raw = pd.read_csv(csv, header=None)
    rings = raw[8].to_numpy()
    expected = np.bincount(np.digitize(rings, [8.5, 10.5]), minlength=3)
    assert len(tr) + len(te) == 4177 and (tr.targets.bincount() + te.targets.bincount()).tolist() == expected.tolist()
    assert tr.info.num_classes == 3 and tr.info.in_chans == 10  # 3 one-hot sex columns + 7 measurements
    x = tr.base.x
    assert torch.all(x[:, :3].sum(1) == 1) and x[:, 3:].mean(0).abs().max() < 1e-4
    assert (x[:, 3:].std(0, unbiased=False) - 1).abs().max() < 1e-3
    first = raw.iloc[0]  # M, ..., 15 rings: the first row is in one split, with its one-hot sex and class 2
    found = [(ds, i) for ds in (tr, te) for i in range(len(ds)) if ds.base.x[i, 2] == 1 and ds.targets[i] == 2]
    assert first[0] == "M" and found


@pytest.mark.parametrize("name, n_train, n_test, features, classes", [
    ("iris", 120, 30, 4, 3), ("wine", 142, 36, 13, 3), ("breast-cancer", 455, 114, 30, 2),
])
def test_sklearn_uci_sets(name, n_train, n_test, features, classes):
    tr, te = build_dataset(name), build_dataset(name, train=False)
    assert (len(tr), len(te)) == (n_train, n_test)
    assert tr.info.in_chans == features and tr.info.num_classes == classes and tr.info.image_size == 0
    total = tr.targets.bincount() + te.targets.bincount()
    assert torch.all((te.targets.bincount().float() - 0.2 * total).abs() <= 1)
    assert tr.base.x.mean(0).abs().max() < 1e-4
    assert torch.equal(build_dataset(name, train=False).base.x, te.base.x)
