"""What the papers published: their values (paper_values/<paper>.yaml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from msda_cli.report.match import as_number

PAPER_DIR = Path(__file__).resolve().parent / "paper_values"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where present: 10x faster


@lru_cache(maxsize=None)
def paper_values(paper_key: str) -> dict:
    path = PAPER_DIR / f"{paper_key}.yaml"
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) if path.is_file() else {"tables": {}}


def parse_paper_value(v: Any) -> tuple[float | None, float | None]:
    """73.23 -> (73.23, None); "4.71 ± 0.062" -> (4.71, 0.062); null -> (None, None)."""
    if v is None:
        return None, None
    if isinstance(v, (int, float)):
        return float(v), None
    text = str(v).replace("+-", "±")
    if "±" in text:
        a, b = text.split("±", 1)
        return float(a), float(b)
    n = as_number(text.strip())
    return n, None


def lookup_paper(paper_key: str, table: str, path: tuple[str, ...], col: str) -> tuple[float | None, float | None]:
    """The published (value, std) at a row path and column of a table, (None, None) where none."""
    node: Any = paper_values(paper_key).get("tables", {}).get(table, {}).get("values", {})
    for part in (*path, col):
        if not isinstance(node, dict) or part not in node:
            return None, None
        node = node[part]
    return parse_paper_value(node)
