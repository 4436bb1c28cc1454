"""ARFF files (Weka's format, OpenML's official one) read into a frame: numeric and nominal attributes.

A small reader of its own rather than `scipy.io.arff`, which reads neither sparse data lines
(`{index value, ...}`) nor quoted values with commas. Supported: `@relation`, `@attribute NAME
numeric|real|integer|{v1, v2, ...}` (names and values quoted with ' or "), `@data` in dense or
sparse lines, `?` for a missing value, `%` comments. In a sparse line an omitted value is 0 (the
first declared value of a nominal attribute, as Weka reads it). String, date and relational
attributes are refused. Numeric cells go through `cells.numeric_column` (finite, not huge).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msda_cli.data.cells import numeric_column
from msda_cli.errors import MsdaError

MISSING = "?"
NUMERIC = ("numeric", "real", "integer")
_ATTRIBUTE = re.compile(r"""@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s+(.*)$""", re.IGNORECASE)


@dataclass
class Arff:
    relation: str
    nominal: dict[str, list[str]]  # attribute -> its declared values, in order (nominal attributes only)
    frame: pd.DataFrame  # one column per attribute: float64 (numeric) or text (nominal); NaN/None = missing
    lines: list[int]  # the file line of each data row


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _split(text: str, quote: str = "'") -> list[str]:
    """Comma-separated fields, quoted fields kept whole (quotes and escapes removed)."""
    return [_unquote(f) for f in next(csv.reader([text], quotechar=quote, escapechar="\\", skipinitialspace=True))]


def _header(name: str, path: Path, lines: list[str]):
    relation, attributes = "", []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        word = line.split(None, 1)[0].lower()
        if word == "@relation":
            relation = _unquote(line.split(None, 1)[1]) if " " in line or "\t" in line else ""
        elif word == "@attribute":
            m = _ATTRIBUTE.match(line)
            if not m:
                raise MsdaError(f"{name}: {path} line {number}: cannot read the attribute {line[:60]!r}")
            attr, kind = _unquote(m.group(1)), m.group(2).strip()
            if kind.startswith("{") and kind.endswith("}"):
                quote = '"' if '"' in kind and "'" not in kind else "'"
                attributes.append((attr, _split(kind[1:-1], quote)))
            elif kind.lower() in NUMERIC:
                attributes.append((attr, None))
            else:
                raise MsdaError(f"{name}: {path} line {number}: attribute {attr!r} has type {kind!r}; "
                                f"only numeric and nominal attributes are supported")
        elif word == "@data":
            if not attributes:
                raise MsdaError(f"{name}: {path} declares no @attribute before @data")
            names = [a for a, _ in attributes]
            if len(set(names)) != len(names):
                raise MsdaError(f"{name}: {path} declares an attribute twice")
            return relation, attributes, number
        else:
            raise MsdaError(f"{name}: {path} line {number}: expected @relation, @attribute or @data, "
                            f"got {line[:40]!r}")
    raise MsdaError(f"{name}: {path} is not an ARFF file (no @data line)")


def _dense(name, path, rows: list[str], numbers: list[int], attributes) -> pd.DataFrame:
    quote = '"' if any('"' in r for r in rows) and not any("'" in r for r in rows) else "'"
    d = len(attributes)
    for row, number in zip(rows, numbers):
        count = len(_split(row, quote)) if ("'" in row or '"' in row) else row.count(",") + 1
        if count != d:
            raise MsdaError(f"{name}: {path} line {number} has {count} values; expected {d} (one per @attribute)")
    text = io.StringIO("\n".join(rows))
    try:
        return pd.read_csv(text, header=None, names=range(d), quotechar=quote, escapechar="\\",
                           skipinitialspace=True, na_filter=False, dtype={i: str for i, (_, v) in
                                                                           enumerate(attributes) if v is not None})
    except Exception as e:
        raise MsdaError(f"{name}: cannot read the data of {path} ({type(e).__name__}: {e})") from None


def _sparse(name, path, rows: list[str], numbers: list[int], attributes) -> pd.DataFrame:
    d = len(attributes)
    cells = np.empty((len(rows), d), dtype=object)
    for j, (_, values) in enumerate(attributes):
        cells[:, j] = values[0] if values is not None else "0"
    for i, (row, number) in enumerate(zip(rows, numbers)):
        if not (row.startswith("{") and row.endswith("}")):
            raise MsdaError(f"{name}: {path} line {number}: a dense line among sparse ones")
        seen = set()
        for entry in (_split(row[1:-1]) if row[1:-1].strip() else []):
            parts = entry.split(None, 1)
            if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) >= d or int(parts[0]) in seen:
                raise MsdaError(f"{name}: {path} line {number}: {entry!r} is not 'index value' with a new index "
                                f"below {d}")
            seen.add(int(parts[0]))
            cells[i, int(parts[0])] = _unquote(parts[1])
    return pd.DataFrame(cells)


def read_arff(name: str, path) -> Arff:
    """Read the ARFF file at `path`; a malformed one is an MsdaError naming the line (`name` leads it)."""
    path = Path(path)
    try:
        lines = path.read_text(errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise MsdaError(f"{name}: cannot read {path} ({type(e).__name__}: {e})") from None
    relation, attributes, start = _header(name, path, lines)
    numbers = [n for n in range(start + 1, len(lines) + 1)
               if lines[n - 1].strip() and not lines[n - 1].lstrip().startswith("%")]
    rows = [lines[n - 1].strip() for n in numbers]
    if not rows:
        raise MsdaError(f"{name}: {path} has no data lines")
    raw = (_sparse if rows[0].startswith("{") else _dense)(name, path, rows, numbers, attributes)
    frame, nominal = {}, {}
    for j, (attr, values) in enumerate(attributes):
        if values is None:
            frame[attr] = numeric_column(name, path, raw[j], f"attribute {attr!r}", numbers, MISSING)
            continue
        nominal[attr] = values
        text = raw[j].astype(str).map(_unquote)
        bad = np.flatnonzero(~text.isin([*values, MISSING]).to_numpy())
        if len(bad):
            raise MsdaError(f"{name}: {path} line {numbers[bad[0]]}, attribute {attr!r}: {text.iloc[bad[0]]!r} "
                            f"is not one of its values ({', '.join(values[:12])}{' ...' if len(values) > 12 else ''})")
        frame[attr] = text.where(text != MISSING, None).to_numpy(dtype=object)
    return Arff(relation, nominal, pd.DataFrame(frame), numbers)
