"""What the papers published: their values (paper_values/<paper>.yaml) and the recipes that train their tables."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from msda_cli.config import list_recipe_names, read_recipe
from msda_cli.report.match import as_number
from msda_cli.report.spec import TableSpec
from msda_cli.report.tables import PAPERS

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


def recipes_for(spec: TableSpec) -> list[str]:
    """Trainable recipes whose `paper_table` names this table ("hmix-gmix Table 2; DCutMix Table 2")."""
    key = (spec.paper_key, (spec.number or spec.paper_table).split()[0].lower())
    return recipe_index().get(key, [])


@lru_cache(maxsize=1)
def recipe_index() -> dict[tuple[str, str], list[str]]:
    """(paper key, table number) -> recipe names, from every recipe's resolved `paper_table`."""
    aliases = {alias: paper.key for paper in PAPERS.values() for alias in paper.aliases}
    index: dict[tuple[str, str], list[str]] = {}
    for name in list_recipe_names():
        try:
            text = str(read_recipe(name).get("paper_table") or "")
        except Exception:  # a broken recipe is not the report's business
            continue
        for segment in text.split(";"):
            words = segment.strip().split()
            paper = aliases.get(words[0].lower()) if words else None
            if paper is None:
                continue
            for number in re.findall(r"(?:Table|Figure|Fig\.)\s*([0-9]+[a-z]?)", segment, flags=re.I):
                index.setdefault((paper, number.lower()), []).append(name)
    return index
