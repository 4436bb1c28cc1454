"""Text cells to finite numbers, strictly: the one check behind every file-format reader of the data layer.

A reader hands over a frame of cells (as pandas parsed them, nothing filled in) and says which text
marks a missing value; what comes back is float64 with NaN only where that marker stood. Anything
else that is not a finite number within the allowed range is an `MsdaError` naming the file, the
line and the column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from msda_cli.errors import MsdaError

LIMIT = 1e9  # larger than any value of the supported sets; bigger ones (crafted files) would swamp the standardization


def _one_by_one(name, path, raw, column, lines, missing):
    values, absent = np.empty(len(raw)), np.zeros(len(raw), dtype=bool)
    for i, cell in enumerate(raw):
        text = str(cell).strip()
        absent[i] = text == missing
        try:
            values[i] = np.nan if absent[i] else float(text)
        except ValueError:
            raise MsdaError(f"{name}: {path} line {lines[i]}, {column}: {text!r} is not a number") from None
    return values, absent


def numeric_column(name: str, path, cells: pd.Series, column: str, lines, missing: str | None = None,
                   bounds: tuple[float, float] | None = None) -> np.ndarray:
    """`cells` as float64 (NaN where the text was `missing`); `lines[i]` is the file line of row i."""
    if pd.api.types.is_bool_dtype(cells):  # pandas reads True/False columns as booleans
        raise MsdaError(f"{name}: {path} line {lines[0]}, {column}: {str(cells.iloc[0])!r} is not a number")
    if pd.api.types.is_numeric_dtype(cells):
        values, absent = cells.to_numpy(dtype=np.float64), np.zeros(len(cells), dtype=bool)
    else:
        raw = cells.to_numpy(dtype=object)
        absent = (raw == missing) if missing is not None else np.zeros(len(raw), dtype=bool)
        try:  # float() of each text: the fast way; a cell float() refuses is looked for below
            values = np.where(absent, "nan", raw).astype(np.float64)
        except (TypeError, ValueError):
            values, absent = _one_by_one(name, path, raw, column, lines, missing)
    bad = np.flatnonzero(~absent & ~np.isfinite(values))
    if len(bad):
        raise MsdaError(f"{name}: {path} line {lines[bad[0]]}, {column}: {values[bad[0]]} is not a finite number")
    lo, hi = bounds if bounds is not None else (-LIMIT, LIMIT)
    bad = np.flatnonzero(~absent & ((values < lo) | (values > hi)))
    if len(bad):
        why = "the range the data set's description states" if bounds is not None else "too large to be a feature"
        raise MsdaError(f"{name}: {path} line {lines[bad[0]]}, {column}: {values[bad[0]]:g} is outside "
                        f"{lo:g}..{hi:g} ({why})")
    return values
