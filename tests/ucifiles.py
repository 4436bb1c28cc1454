"""Small files in the official formats of MixupE Table 4's data sets (msda_cli/data/uci.py), written
as UCI and OpenML write them: `write_uci(name, root)` fills `root` so that `build_dataset(name,
root=root)` finds every split, and returns the labels written per file (as the file spells them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msda_cli.data.uci import LAYOUTS

ROWS = {"letter": 156, "arrhythmia": 64}  # enough rows per class for a stratified split of all classes


def _labels(name: str, n: int) -> list[str]:
    classes = LAYOUTS[name].classes
    if name == "arrhythmia":
        classes = tuple(c for c in classes if c not in ("11", "12", "13"))  # as in the real file: never occur
    return [classes[k % len(classes)] for k in range(n)]


def _values(name: str, n: int, rng) -> np.ndarray:
    layout = LAYOUTS[name]
    lo, hi = layout.bounds if layout.bounds is not None else (0, 50)
    return rng.integers(int(lo), int(hi) + 1, size=(n, layout.features))


def _comma_file(path: Path, name: str, n: int, seed: int) -> list[str]:
    layout, rng = LAYOUTS[name], np.random.default_rng(seed)
    labels, values = _labels(name, n), _values(name, n, rng).astype(object)
    if name == "cmc":
        values[:, 0] = rng.integers(16, 50, n)  # wife's age
        values[:, [1, 2, 6, 7]] = rng.integers(1, 5, (n, 4))  # educations, occupation, living standard: 1-4
        values[:, [4, 5, 8]] = rng.integers(0, 2, (n, 3))  # binary attributes
    if name == "arrhythmia":
        values[:, 1] = rng.integers(0, 2, n)  # sex
        values[::3, 13] = "?"  # the J wave: mostly missing in the real file
        values[1::7, 10] = "?"
    lines = []
    for label, row in zip(labels, values):
        fields = [str(v) for v in row]
        lines.append(",".join([label, *fields] if layout.label_at == 0 else [*fields, label]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return labels


def _mfeat_file(path: Path, name: str, seed: int) -> list[str]:
    layout, rng = LAYOUTS[name], np.random.default_rng(seed)
    if name in ("mfeat-factors", "mfeat-pixel"):  # integers, right-aligned as in the UCI files
        values = _values(name, 2000, rng) if name == "mfeat-pixel" else rng.integers(0, 1200, (2000, layout.features))
        text = "\n".join("".join(f"{v:5d}" for v in row) for row in values)
    else:  # reals in e-notation, space-padded
        values = rng.normal(0, 1, (2000, layout.features)) * (100 if name == "mfeat-morphological" else 1)
        text = "\n".join("".join(f"{v:16.7e}" for v in row) for row in values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return [layout.classes[k // 200] for k in range(2000)]


def arff_header(name: str, features: int, numeric: str = "numeric", prefix: str = "V") -> list[str]:
    return ["% OpenML data set, written for a test", f"@RELATION {name}", "",
            *[f"@ATTRIBUTE {prefix}{k + 1} {numeric}" for k in range(features)],
            "@ATTRIBUTE class {" + ",".join(f"'{d}'" for d in range(10)) + "}", "", "@DATA"]


def _arff_file(path: Path, name: str, n: int, seed: int, sparse: bool) -> list[str]:
    layout, rng = LAYOUTS[name], np.random.default_rng(seed)
    labels = _labels(name, n)
    prefix = "pixel" if name == "mnist-784" else "V"
    lines = arff_header(name.replace("-", "_"), layout.features, "numeric", prefix)
    if sparse:  # mostly-zero rows: a few pixels, then the class
        for k, label in enumerate(labels):
            cols = sorted(rng.choice(layout.features, 3, replace=False))
            entries = [f"{c} {rng.integers(1, 256)}" for c in cols] + [f"{layout.features} '{label}'"]
            lines.append("{" + ",".join(entries) + "}")
    else:
        values = rng.normal(0, 2, (n, layout.features)).round(5)
        lines += [",".join([*map(str, row), f"'{label}'"]) for row, label in zip(values, labels)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return labels


def write_uci(name: str, root: Path, seed: int = 0) -> dict[str, list[str]]:
    """Official-format files of data set `name` in `root`; {file name: the labels written, in order}."""
    layout = LAYOUTS[name]
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, candidates in enumerate(layout.files):
        file = candidates[0][0]
        path = root / file
        if layout.arff:
            n = layout.test_rows + 20 if layout.test_rows else 60
            written[file] = _arff_file(path, name, n, seed + split, sparse=name == "mnist-784")
        elif layout.label_at is None:
            written[file] = _mfeat_file(path, name, seed + split)
        else:
            written[file] = _comma_file(path, name, ROWS.get(name, 40), seed + split)
    return written
