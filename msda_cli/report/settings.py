"""A run's setting: its resolved config, flattened to dotted keys, without the keys that cannot change a result.

Two runs are of one setting when they agree on every key outside NOT_SETTINGS, which is the one
list of those keys (seed aside, the others say where data is read from and how the work is
bookkept). A key that a run stored by an older msda lacks reads as the schema's default, so a
field added to the recipe schema since does not split old runs from new ones; mixer, model and
data options have no defaults here (a method that gained a hyperparameter is another method).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable

from msda_cli.report.match import as_number, is_missing

NOT_SETTINGS = (
    "seed",  # a cell is the mean over seeds
    "name", "description", "paper_table",  # the recipe's name and notes
    "method_defaults",  # only picks the mixer values of `--method`, and those are compared themselves
    "data.root", "data.download", "data.workers",  # where the data is read from, and by how many workers
    "checkpoint_every", "eval_batch_size",  # how often a checkpoint is written; evaluation's batch size
    "channels_last",  # the memory layout of the same computation
    "compile", "threads", "data.pipeline",  # the same computation compiled, on N CPU threads, fed on the device
)


def is_setting(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_SETTINGS)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{"mixer": {"k": 3}} -> {"mixer.k": 3}; lists as JSON text."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                out.update(flatten(v, name + "."))
            elif isinstance(v, (list, tuple)):
                out[name] = json.dumps(v, sort_keys=True)
            else:
                out[name] = v
    return out


@lru_cache(maxsize=1)
def schema_defaults() -> dict[str, Any]:
    """The recipe schema's default of every optional key, flattened (settings keys only)."""
    from msda_cli.config import Config

    required = {name for name, f in Config.model_fields.items() if f.is_required()}
    dump = Config.model_construct().model_dump(mode="json", exclude=required)
    return {k: v for k, v in flatten(dump).items() if is_setting(k)}


_SKIPPED = frozenset(NOT_SETTINGS)


def setting(config: dict) -> dict[str, Any]:
    """The setting of a resolved config (a dict as a run stores it): flattened, defaults filled in."""
    flat = dict(schema_defaults())
    _flatten_setting(config, "", flat)
    return flat


def _flatten_setting(node: dict, prefix: str, out: dict) -> None:
    """flatten(), skipping the keys (and sections) of NOT_SETTINGS on the way: one pass per config."""
    for k, v in node.items():
        name = prefix + k
        if name in _SKIPPED:
            continue
        if isinstance(v, dict):
            _flatten_setting(v, name + ".", out)
        elif isinstance(v, (list, tuple)):
            out[name] = json.dumps(v, sort_keys=True)
        else:
            out[name] = v


def _canonical(v: Any) -> Any:
    """Numbers as floats (1 and 1.0 are one value), missing values as None."""
    t = type(v)
    if t is float:
        return None if v != v else v
    if t is int:
        return float(v)
    if v is None or t is bool or t is str:
        return v
    if is_missing(v):
        return None
    n = as_number(v)
    return n if n is not None else v


def setting_text(flat: dict[str, Any], drop: Iterable[str] = ()) -> str:
    """One text per setting (equal texts, equal settings), leaving out the keys in `drop`."""
    items = [(k, c) for k, v in flat.items() if k not in drop and (c := _canonical(v)) is not None]
    items.sort()
    return json.dumps(items, separators=(",", ":"), default=str)


def differing_keys(a: dict[str, Any], b: dict[str, Any], drop: Iterable[str] = ()) -> list[str]:
    """The keys two settings differ on (one lacking a key the other has counts)."""
    drop = set(drop)
    keys = (set(a) | set(b)) - drop
    return sorted(k for k in keys if _canonical(a.get(k)) != _canonical(b.get(k)))
