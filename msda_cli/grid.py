"""`--grid key=a,b,c`: one run per listed value, the product over several keys (as `--method` and `--seeds`).

Values are split at the commas outside brackets and quotes, and each is read as a YAML scalar as `--set`
reads its one value, so `--grid optim.betas=[0.9,0.99],[0.8,0.9]` is two values and `--set` keeps
meaning one value (`--set optim.betas=[0.9,0.99]`, `--set data.options.sep=,`). A grid point is a list
of `key=value` assignments applied after `--set`; a key may not be in both. `point_of` reads a point
back from a resolved config, so a launcher can hand one point to a child and name runs by it.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from msda_cli.errors import MsdaError

_OPEN, _CLOSE = "[{(", "]})"


def split_values(text: str) -> list[str]:
    """`a,[b,c],'d,e'` -> ['a', '[b,c]', "'d,e'"]: the commas at depth 0 outside quotes separate values."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_grid(items: list[str] | tuple[str, ...] | None) -> list[tuple[str, list[str]]]:
    """Each `key=a,b,c` as (key, [value texts]); MsdaError on bad syntax, an empty value or a key given twice."""
    out: list[tuple[str, list[str]]] = []
    for item in items or ():
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise MsdaError(f"--grid expects key=a,b,c (e.g. mixer.alpha=0.1,0.2), got {item!r}")
        key, text = (part.strip() for part in item.split("=", 1))
        values = split_values(text)
        if any(not v for v in values):
            raise MsdaError(f"--grid {key}: an empty value in {text!r}")
        if key in (k for k, _ in out):
            raise MsdaError(f"--grid gives {key!r} twice; list every value once: {key}=a,b,c")
        out.append((key, values))
    return out


def grid_points(items) -> list[list[str]]:
    """Every combination of the grid's values as `key=value` assignments (one empty point without a grid)."""
    grid = parse_grid(items)
    return [[f"{key}={value}" for key, value in zip((k for k, _ in grid), combo)]
            for combo in itertools.product(*(values for _, values in grid))]


def grid_keys(items) -> list[str]:
    return [key for key, _ in parse_grid(items)]


def check_apart(sets: list[str], items) -> None:
    """MsdaError where a key is both set (`--set`) and varied (`--grid`)."""
    set_keys = {item.split("=", 1)[0].strip() for item in sets if "=" in item}
    both = [key for key in grid_keys(items) if key in set_keys]
    if both:
        raise MsdaError(f"--set and --grid both give {both[0]!r}; list its values in --grid only")


def value_at(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def point_of(config: dict, keys: list[str]) -> list[str]:
    """The grid point a resolved config (a dict as a run stores it) is, as `key=value` assignments that
    resolve to it again (values as JSON, which YAML reads back)."""
    return [f"{key}={json.dumps(value_at(config, key))}" for key in keys]


def point_label(config: dict, keys: list[str]) -> str:
    """`alpha=0.1 eta=0.001`: the grid point by the last part of each key, as a person tells runs apart."""
    return " ".join(f"{key.rsplit('.', 1)[-1]}={_shown(value_at(config, key))}" for key in keys)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
