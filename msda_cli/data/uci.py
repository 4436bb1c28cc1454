"""The data sets of MixupE's Table 4, each read from its official files (UCI text, OpenML ARFF).

One `Layout` per set says what its files hold; one reader checks a file against it and the tabular
pipeline (`tabular.encode_features`: one-hot categorical columns, missing values filled with the
training mean, standardization with training statistics; `tabular.stratified_split`) makes the
data set. `--data-dir DIR`: the files in DIR or in DIR/<folder>.

| name | official file(s) | format |
|---|---|---|
| optdigits | optdigits.tra, .tes | 64 integers 0-16, class 0-9 last; comma, no header |
| letter | letter-recognition.data | letter A-Z first, 16 integers 0-15; comma, no header |
| pendigits | pendigits.tra, .tes | 16 integers 0-100, class 0-9 last; comma, no header |
| balance-scale | balance-scale.data | class L/B/R first, 4 integers 1-5; comma, no header |
| mfeat-* | mfeat-fac/-fou/-kar/-mor/-pix/-zer | 216/76/64/6/240/47 numbers, whitespace-separated; no label |
|   |   | column: 2000 rows, 200 per digit in class order (0 first) |
| cmc | cmc.data | 9 attributes (education x2, occupation, living standard: categories 1-4, one-hot), |
|   |   | class 1-3 last; comma, no header |
| arrhythmia | arrhythmia.data | 279 attributes, class 1-16 last (13 occur); comma, no header; '?' = missing |
| volkert | volkert.arff | OpenML 41166: 180 numeric attributes, nominal `class` 0-9 |
| mnist-784 | mnist_784.arff | OpenML 554: 784 pixels 0-255, nominal `class` 0-9; rows in MNIST's order |

Every value is checked (`cells.numeric_column`: a number, finite, inside the range the set's
description states or below `cells.LIMIT`), and so are the number of fields per line, the labels
(one of the set's classes) and the row count where the format fixes it. Splits: the official
training and test files where a set has them (optdigits, pendigits: writer-disjoint; `split:
pooled` pools both and splits them as one file), MNIST's own test digits (the last 10 000 rows)
for mnist-784, else the fixed stratified split of the tabular sets (`test_fraction`, `split_seed`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msda_cli.checks import check_choice
from msda_cli.data import LabeledDataset, fail_missing, register_dataset, resolve_root
from msda_cli.data.arff import read_arff
from msda_cli.data.cells import numeric_column
from msda_cli.data.tabular import SPLIT_SEED, TEST_FRACTION, _dataset, encode_features, stratified_split
from msda_cli.errors import MsdaError

UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases"
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Layout:
    """What the official files of one data set hold."""

    label: str  # as MixupE's Table 4 prints it
    files: tuple[tuple[tuple[str, int], ...], ...]  # per official split: candidate (file name, header lines)
    features: int
    classes: tuple[str, ...]  # the labels as the files write them, in class order
    url: str
    folder: str
    label_at: int | None = -1  # field of the label; None: the label is the row's block of rows (mfeat)
    sep: str | None = ","  # None: whitespace
    missing: str | None = None  # the text of a missing value
    categorical: tuple[int, ...] = ()  # feature positions that are categories (one-hot encoded)
    bounds: tuple[float, float] | None = None  # the value range the set's description states
    rows: int | None = None  # rows the file must have
    test_rows: int = 0  # the last rows that are the official test split (one file)
    arff: bool = False

    @property
    def fields(self) -> int:
        return self.features + (self.label_at is not None)


def _one(name: str) -> tuple[tuple[str, int], ...]:
    return ((name, 0),)


def _mfeat(label: str, suffix: str, features: int, bounds=None) -> Layout:
    return Layout(label, (_one(f"mfeat-{suffix}"),), features, DIGITS, f"{UCI}/mfeat/mfeat-{suffix}", "mfeat",
                  label_at=None, sep=None, bounds=bounds, rows=2000)


LAYOUTS = {
    "arrhythmia": Layout("Arrhythmia", (_one("arrhythmia.data"),), 279, tuple(str(c) for c in range(1, 17)),
                         f"{UCI}/arrhythmia/arrhythmia.data", "arrhythmia", missing="?"),
    "letter": Layout("Letter", (_one("letter-recognition.data"),), 16, tuple(chr(c) for c in range(65, 91)),
                     f"{UCI}/letter-recognition/letter-recognition.data", "letter", label_at=0, bounds=(0, 15)),
    "balance-scale": Layout("Balance-scale", (_one("balance-scale.data"),), 4, ("L", "B", "R"),
                            f"{UCI}/balance-scale/balance-scale.data", "balance-scale", label_at=0, bounds=(1, 5)),
    "mfeat-factors": _mfeat("Mfeat-factors", "fac", 216),
    "mfeat-fourier": _mfeat("Mfeat-fourier", "fou", 76),
    "mfeat-karhunen": _mfeat("Mfeat-karhunen", "kar", 64),
    "mfeat-morphological": _mfeat("Mfeat-morph", "mor", 6),
    "mfeat-pixel": _mfeat("Mfeat-pixel", "pix", 240, bounds=(0, 6)),
    "mfeat-zernike": _mfeat("Mfeat-zernike", "zer", 47),
    "cmc": Layout("CMC", (_one("cmc.data"),), 9, ("1", "2", "3"), f"{UCI}/cmc/cmc.data", "cmc",
                  categorical=(1, 2, 6, 7)),
    "optdigits": Layout("Optdigits", ((("optdigits.tra", 0), ("optdigits.tra.csv", 1)),
                                      (("optdigits.tes", 0), ("optdigits.tes.csv", 1))),
                        64, DIGITS, f"{UCI}/optdigits/", "optdigits", bounds=(0, 16)),
    "pendigits": Layout("Pendigits", (_one("pendigits.tra"), _one("pendigits.tes")), 16, DIGITS,
                        f"{UCI}/pendigits/", "pendigits", bounds=(0, 100)),
    "mnist-784": Layout("Mnist_784", (_one("mnist_784.arff"),), 784, DIGITS,
                        "https://www.openml.org/d/554", "mnist_784", bounds=(0, 255), test_rows=10000, arff=True),
    "volkert": Layout("Volkert", (_one("volkert.arff"),), 180, DIGITS, "https://www.openml.org/d/41166", "volkert",
                      arff=True),
}


def _find(name: str, layout: Layout, root, split: int) -> tuple[Path, int]:
    base = resolve_root(root)
    candidates = layout.files[split]
    if base.is_file() and len(layout.files) == 1:
        return base, candidates[0][1]
    for folder in (base, base / layout.folder):
        for file, header in candidates:
            if (folder / file).is_file():
                return folder / file, header
    files = " and ".join(c[0][0] for c in layout.files)
    how = f"Get the official file(s) from {layout.url}"  # no period after a URL
    fail_missing(name, f"{files} in {base} or {base / layout.folder}", how)


def _labels(name, path, text: pd.Series, classes, lines) -> np.ndarray:
    text = text.astype("string").str.strip()
    index = {c: i for i, c in enumerate(classes)}
    codes = text.map(index)
    bad = np.flatnonzero(codes.isna().to_numpy())
    if len(bad):
        raise MsdaError(f"{name}: {path} line {lines[bad[0]]}: label {text.iloc[bad[0]]!r} is not one of "
                        f"the {len(classes)} classes ({', '.join(classes)})")
    return np.array(codes.to_numpy(dtype=np.int64))  # writable: torch takes it as is


def _features(name, path, cells: pd.DataFrame, layout: Layout, lines, missing) -> pd.DataFrame:
    """Checked numbers, one column per feature; categorical ones as text (the pipeline one-hot encodes them)."""
    out = {}
    for k, col in enumerate(cells.columns):
        values = numeric_column(name, path, cells[col], f"feature {k + 1}", lines, missing, layout.bounds)
        out[f"f{k + 1}"] = (pd.Series(values).map(lambda v: None if np.isnan(v) else f"{v:g}").astype("string")
                            if k in layout.categorical else values)
    return pd.DataFrame(out)


def _read_text(name: str, path: Path, header: int, layout: Layout):
    try:
        lines = path.read_text(errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise MsdaError(f"{name}: cannot read {path} ({type(e).__name__}: {e})") from None
    if header and lines and lines[0].split(",")[0].strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise MsdaError(f"{name}: {path} line 1 is data; this copy of the set has a header line there")
    numbers = [n for n in range(header + 1, len(lines) + 1) if lines[n - 1].strip()]
    rows = [lines[n - 1] for n in numbers]
    if not rows:
        raise MsdaError(f"{name}: {path} has no data lines")
    for row, n in zip(rows, numbers):
        count = len(row.split()) if layout.sep is None else row.count(layout.sep) + 1
        if count != layout.fields:
            raise MsdaError(f"{name}: {path} line {n} has {count} fields; expected {layout.fields} "
                            f"({layout.features} features{'' if layout.label_at is None else ' and the label'})")
    if layout.rows is not None and len(rows) != layout.rows:
        raise MsdaError(f"{name}: {path} has {len(rows)} rows; the official file has {layout.rows}")
    try:
        sep = r"\s+" if layout.sep is None else layout.sep
        dtype = str if layout.label_at is None else {layout.label_at % layout.fields: str}  # labels stay text
        cells = pd.read_csv(io.StringIO("\n".join(rows)), header=None, sep=sep, na_filter=False, dtype=dtype)
    except Exception as e:
        raise MsdaError(f"{name}: cannot read {path} ({type(e).__name__}: {e})") from None
    if layout.label_at is None:  # mfeat: 200 rows per class, in class order
        y = np.arange(len(rows)) * len(layout.classes) // len(rows)
    else:
        at = cells.columns[layout.label_at]
        y = _labels(name, path, cells.pop(at), layout.classes, numbers)
    return _features(name, path, cells, layout, numbers, layout.missing), y


def _read_arff(name: str, path: Path, layout: Layout):
    data = read_arff(name, path)
    label = next((c for c in data.frame.columns if c.lower() == "class"), None)
    if label is None:
        raise MsdaError(f"{name}: {path} has no attribute 'class' (the label)")
    cells = data.frame.drop(columns=[label])
    if cells.shape[1] != layout.features:
        raise MsdaError(f"{name}: {path} has {cells.shape[1]} attributes beside 'class'; expected {layout.features}")
    nominal = [c for c in cells.columns if c in data.nominal]
    if nominal:
        raise MsdaError(f"{name}: {path}: attribute {nominal[0]!r} is nominal; this set's attributes are numeric")
    labels = data.frame[label]
    if label not in data.nominal:
        labels = pd.Series([None if np.isnan(v) else f"{v:g}" for v in labels], dtype=object)
    y = _labels(name, path, labels, layout.classes, data.lines)
    return _features(name, path, cells, layout, data.lines, None), y


SPLITS = ("official", "pooled")  # two-file sets: the files as the splits, or both pooled and split as one


def load(name: str, root=None, train: bool = True, test_fraction: float = TEST_FRACTION,
         split_seed: int = SPLIT_SEED, split: str = "official") -> LabeledDataset:
    """Data set `name` of `LAYOUTS` from its official files in `root`: the training or the test split."""
    layout = LAYOUTS[name]
    check_choice(f"{name} split", split, SPLITS)
    parts = []
    for k in range(len(layout.files)):
        path, header = _find(name, layout, root, k)
        parts.append(_read_arff(name, path, layout) if layout.arff else _read_text(name, path, header, layout))
    if len(parts) == 2 and split == "official":
        (x_tr, y_tr), (x_te, y_te) = parts
    else:
        x = pd.concat([p[0] for p in parts], ignore_index=True)
        y = np.concatenate([p[1] for p in parts])
        if layout.test_rows:
            if len(y) <= layout.test_rows:
                raise MsdaError(f"{name}: {path} has {len(y)} rows; its last {layout.test_rows} are the test split")
            tr, te = np.arange(len(y) - layout.test_rows), np.arange(len(y) - layout.test_rows, len(y))
        else:
            tr, te = stratified_split(y, test_fraction, split_seed)
        x_tr, y_tr, x_te, y_te = x.iloc[tr].reset_index(drop=True), y[tr], x.iloc[te].reset_index(drop=True), y[te]
    a, b = encode_features(x_tr, x_te)
    return _dataset(name, a, y_tr, list(layout.classes)) if train else _dataset(name, b, y_te, list(layout.classes))


def _register(name: str, layout: Layout) -> None:
    if layout.test_rows:
        def factory(root=None, train: bool = True, augment: bool = True) -> LabeledDataset:
            return load(name, root, train)
        how = "the official test rows"
    elif len(layout.files) == 2:
        def factory(root=None, train: bool = True, augment: bool = True, split: str = "official",
                    test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> LabeledDataset:
            return load(name, root, train, test_fraction, split_seed, split)
        how = "the official training and test files (split: official) or a stratified split of both (pooled)"
    else:
        def factory(root=None, train: bool = True, augment: bool = True, test_fraction: float = TEST_FRACTION,
                    split_seed: int = SPLIT_SEED) -> LabeledDataset:
            return load(name, root, train, test_fraction, split_seed)
        how = "a fixed stratified split"
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"{layout.label} from {' and '.join(c[0][0] for c in layout.files)}; {how}."
    register_dataset(name, label=layout.label)(factory)


for _name, _layout in LAYOUTS.items():
    _register(_name, _layout)
