"""Tabular data: any CSV (`tabular`), UCI Abalone (`abalone`, 3 classes) and the UCI sets
scikit-learn bundles (`iris`, `wine`, `breast-cancer`).

Preprocessing (MixupE §4.2, after Zhang et al. 2018): categorical columns become one-hot
inputs (categories seen in training), missing values are filled with the training mean
(numeric) or mode (categorical), and numeric columns are standardized with training
statistics (a constant column is only centred), so `info.mean` is 0 and `info.std` is 1.
One-hot columns stay 0/1. When a set comes as one file, the split is a fixed stratified one
(`test_fraction` 0.2, `split_seed` 0). `info.image_size` is 0 and `info.in_chans` is the
number of input features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from msda_cli.checks import check_choice, check_float
from msda_cli.data import (
    DatasetInfo, LabeledDataset, TensorDataset, fail_missing, register_dataset, resolve_root,
)
from msda_cli.errors import MsdaError

TEST_FRACTION = 0.2
SPLIT_SEED = 0
ABALONE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/abalone/abalone.data"
ABALONE_COLUMNS = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight",
                   "viscera_weight", "shell_weight", "rings"]
ABALONE_CLASSES = ["rings 1-8", "rings 9-10", "rings 11+"]


# ----- generic steps ---------------------------------------------------------------


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _has_header(path: Path, sep: str) -> bool:
    """The first line is a header if some column is text there and a number below it."""
    with open(path, newline="") as f:
        lines = [f.readline(), f.readline()]
    first, second = ([c.strip().strip('"') for c in line.rstrip("\r\n").split(sep)] for line in lines)
    if not second or second == [""]:
        return not all(_is_number(c) for c in first if c)
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second) if a and b)


def read_csv(name: str, path, header="auto", sep: str = ",") -> pd.DataFrame:
    path = Path(path).expanduser()
    if not path.is_file():
        fail_missing(name, f"a CSV file at {path}", "Pass the file as option path=FILE (or --data-dir FILE).")
    if check_choice(f"{name} header", header, (True, False, "auto")) == "auto":
        header = _has_header(path, sep)
    try:
        df = pd.read_csv(path, sep=sep, header=0 if header else None, skipinitialspace=True)
    except Exception as e:
        raise MsdaError(f"{name}: cannot read {path} as CSV ({type(e).__name__}: {e})") from None
    if df.empty or df.shape[1] < 2:
        raise MsdaError(f"{name}: {path} needs at least one feature column and a label column")
    return df


def label_column(name: str, df: pd.DataFrame, label) -> str:
    """The column named `label`, or at (possibly negative) index `label`."""
    if label in df.columns:
        return label
    if isinstance(label, str) and label.lstrip("-").isdigit():
        label = int(label)
    if isinstance(label, int) and not isinstance(label, bool) and -df.shape[1] <= label < df.shape[1]:
        return df.columns[label]
    raise MsdaError(f"{name}: no label column {label!r}; columns: {', '.join(map(str, df.columns))}")


def encode_labels(train: pd.Series, test: pd.Series):
    values = pd.concat([train, test]).dropna().unique()
    if pd.api.types.is_numeric_dtype(train) and pd.api.types.is_numeric_dtype(test):
        values = sorted(values)
        classes = [str(int(v)) if float(v).is_integer() else str(v) for v in values]
    else:
        values = sorted(values, key=str)
        classes = [str(v) for v in values]
    index = {v: i for i, v in enumerate(values)}
    if train.isna().any() or test.isna().any():
        raise MsdaError("tabular: the label column has missing values")
    return (np.array([index[v] for v in train], dtype=np.int64),
            np.array([index[v] for v in test], dtype=np.int64), classes)


def encode_features(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One-hot categorical columns, fill missing values, standardize numeric columns."""
    tr_cols, te_cols = [], []
    for col in train.columns:
        a, b = train[col], test[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            a, b = a.astype(float), b.astype(float)
            mean = a.mean() if a.notna().any() else 0.0
            a, b = a.fillna(mean), b.fillna(mean)
            std = a.std(ddof=0)
            std = std if std > 0 else 1.0
            tr_cols.append(((a - mean) / std).to_numpy()[:, None])
            te_cols.append(((b - mean) / std).to_numpy()[:, None])
        else:
            a, b = a.astype("string"), b.astype("string")
            mode = a.mode(dropna=True)
            fill = mode.iloc[0] if len(mode) else ""
            a, b = a.fillna(fill), b.fillna(fill)
            cats = sorted(a.unique())
            tr_cols.append(np.stack([(a == c).to_numpy(dtype=float) for c in cats], 1))
            te_cols.append(np.stack([(b == c).to_numpy(dtype=float) for c in cats], 1))
    return np.concatenate(tr_cols, 1).astype(np.float32), np.concatenate(te_cols, 1).astype(np.float32)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    check_float("test_fraction", test_fraction, min=0, max=1, open="both")
    idx = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    try:
        tr, te = train_test_split(idx, test_size=float(test_fraction), random_state=int(seed), stratify=stratify)
    except ValueError as e:
        raise MsdaError(f"cannot split {len(y)} samples with test_fraction={test_fraction}: {e}") from None
    return np.sort(tr), np.sort(te)


def _dataset(name: str, x: np.ndarray, y: np.ndarray, classes: list[str]) -> LabeledDataset:
    d = int(x.shape[1])
    info = DatasetInfo(name=name, num_classes=len(classes), in_chans=d, image_size=0,
                       mean=(0.0,) * d, std=(1.0,) * d, classes=list(classes))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)
    return LabeledDataset(TensorDataset(xt, yt), info, yt)


def frames_to_dataset(name, train_df, test_df, label_col, train: bool) -> LabeledDataset:
    y_tr, y_te, classes = encode_labels(train_df[label_col], test_df[label_col])
    x_tr, x_te = encode_features(train_df.drop(columns=[label_col]), test_df.drop(columns=[label_col]))
    return _dataset(name, x_tr, y_tr, classes) if train else _dataset(name, x_te, y_te, classes)


def split_frame(df: pd.DataFrame, label_col, test_fraction, seed):
    codes = pd.factorize(df[label_col].astype("string"))[0]
    tr, te = stratified_split(codes.astype(np.int64), test_fraction, seed)
    return df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True)


# ----- data sets -------------------------------------------------------------------


def _under(root, path):
    """A relative `path` that does not exist here is looked up in the folder `root`."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_absolute() and not path.exists() and root not in (None, "") and Path(root).expanduser().is_dir():
        return Path(root).expanduser() / path
    return path


@register_dataset("tabular")
def tabular(root=None, train: bool = True, augment: bool = True, path=None, test_path=None, label=-1,
            header="auto", sep: str = ",", test_fraction: float = TEST_FRACTION,
            split_seed: int = SPLIT_SEED) -> LabeledDataset:
    """A CSV with a label column (`label`: name or index, default the last column). With
    `test_path` the two files are the splits; otherwise a fixed stratified split of `path`."""
    if path is None:
        if root in (None, "") or not Path(root).expanduser().is_file():
            raise MsdaError("tabular needs a CSV file: option path=FILE (or --data-dir FILE)")
        path = root
    path, test_path = (_under(root, p) for p in (path, test_path))
    df = read_csv("tabular", path, header, sep)
    col = label_column("tabular", df, label)
    if test_path is not None:
        test_df = read_csv("tabular", test_path, header, sep)
        if list(test_df.columns) != list(df.columns):
            raise MsdaError(f"tabular: {test_path} and {path} have different columns")
    else:
        df, test_df = split_frame(df, col, test_fraction, split_seed)
    return frames_to_dataset("tabular", df, test_df, col, train)


def _abalone_file(root) -> Path:
    root = resolve_root(root)
    if root.is_file():
        return root
    for name in ("abalone.csv", "abalone.data"):
        if (root / name).is_file():
            return root / name
    fail_missing("abalone", f"{root}/abalone.csv or {root}/abalone.data (UCI Abalone, no header line)",
                 f"Run with --download on a machine with internet, or get {ABALONE_URL}.")


@register_dataset("abalone", label="Abalone")
def abalone(root=None, train: bool = True, augment: bool = True, download: bool = False,
            test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> LabeledDataset:
    """UCI Abalone as 3 classes (rings 1-8, 9-10, 11+: the usual 3-class version, as in
    MixupE's Table 4); sex one-hot (F, I, M) + 7 standardized measurements = 10 features."""
    if download:
        target = resolve_root(root)
        if not (target.is_file() or (target / "abalone.csv").is_file() or (target / "abalone.data").is_file()):
            from torchvision.datasets.utils import download_url

            try:
                download_url(ABALONE_URL, str(target), "abalone.data")
            except Exception as e:
                raise MsdaError(f"abalone: download into {target} failed ({type(e).__name__}: {e})") from None
    path = _abalone_file(root)
    df = read_csv("abalone", path, header=False)
    if df.shape[1] != len(ABALONE_COLUMNS):
        raise MsdaError(f"abalone: {path} has {df.shape[1]} columns; expected {len(ABALONE_COLUMNS)} "
                        f"({', '.join(ABALONE_COLUMNS)})")
    df.columns = ABALONE_COLUMNS
    df["sex"] = df["sex"].astype("string")
    if not pd.api.types.is_numeric_dtype(df["rings"]):
        raise MsdaError(f"abalone: the last column of {path} (rings) is not numeric")
    rings = df.pop("rings").to_numpy()
    y = np.where(rings <= 8, 0, np.where(rings <= 10, 1, 2)).astype(np.int64)
    tr, te = stratified_split(y, test_fraction, split_seed)
    x_tr, x_te = encode_features(df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True))
    return _dataset("abalone", x_tr, y[tr], ABALONE_CLASSES) if train else _dataset("abalone", x_te, y[te],
                                                                                     ABALONE_CLASSES)


def _sklearn_set(name: str, loader, train: bool, test_fraction, split_seed) -> LabeledDataset:
    bunch = loader()
    y = np.asarray(bunch.target, dtype=np.int64)
    tr, te = stratified_split(y, test_fraction, split_seed)
    cols = [str(c) for c in bunch.feature_names]
    frame = pd.DataFrame(np.asarray(bunch.data, dtype=np.float64), columns=cols)
    x_tr, x_te = encode_features(frame.iloc[tr], frame.iloc[te])
    classes = [str(c) for c in bunch.target_names]
    return _dataset(name, x_tr, y[tr], classes) if train else _dataset(name, x_te, y[te], classes)


def _register_sklearn(name: str, loader_name: str):
    def factory(root=None, train: bool = True, augment: bool = True, test_fraction: float = TEST_FRACTION,
                split_seed: int = SPLIT_SEED) -> LabeledDataset:
        import sklearn.datasets

        return _sklearn_set(name, getattr(sklearn.datasets, loader_name), train, test_fraction, split_seed)

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"scikit-learn's `{loader_name}` (bundled, no download), fixed stratified split."
    register_dataset(name)(factory)


_register_sklearn("iris", "load_iris")
_register_sklearn("wine", "load_wine")
_register_sklearn("breast-cancer", "load_breast_cancer")
