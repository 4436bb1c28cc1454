"""Finding runs: `msda runs list --where key=value --sort KEY --limit N` over the runs table.

A `--where` key is a column of the runs table (id, name, recipe, dataset, arch, method, seed, status,
top1 ...), `tag` (any one of a run's tags) or a dotted key of the run's config (optim.lr, mixer.alpha).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from msda_cli.errors import MsdaError
from msda_cli.report.filters import parse_where
from msda_cli.report.match import tags_match
from msda_cli.report.settings import flatten
from msda_cli.store.tags import TAG_KEY

# keys sorted best first; every other key ascending
DESCENDING = frozenset({"top1", "created"})


def config_column(configs: pd.Series, key: str) -> pd.Series | None:
    """A dotted config key of every run (None where no run has it)."""
    flat = configs.map(lambda text: flatten(json.loads(text or "{}")))
    if not flat.map(lambda f: key in f).any():
        return None
    return pd.Series([f.get(key) for f in flat], index=configs.index, dtype=object)


def where_mask(summary: pd.DataFrame, configs: pd.Series, where: list[str]) -> np.ndarray:
    """Runs (rows of `summary`, with their configs) passing every `--where`; MsdaError on an unknown key."""
    mask = np.ones(len(summary), dtype=bool)
    for key, matcher in parse_where(where).items():
        if key == TAG_KEY:
            mask &= np.fromiter((tags_match(matcher, t) for t in summary["tags"]), bool, len(summary))
            continue
        column = summary[key] if key in summary.columns else config_column(configs, key.removeprefix("config."))
        if column is None:
            if not len(summary):
                continue  # an empty store: nothing to match, nothing to name
            raise MsdaError(f"--where: unknown key {key!r}; use a column ({', '.join(summary.columns)}), "
                            "tag, or a config key such as optim.lr")
        mask &= matcher.mask(column.reset_index(drop=True).astype(object), len(summary))
    return mask


def sort_runs(frame: pd.DataFrame, key: str | None, reverse: bool = False) -> pd.DataFrame:
    """Sorted by `key` (top1 and created best/newest first), missing values last; MsdaError on an unknown key."""
    if key is None:
        return frame
    if key not in frame.columns:
        raise MsdaError(f"--sort: unknown key {key!r}; choose from: {', '.join(frame.columns)}")
    ascending = (key not in DESCENDING) != reverse
    return frame.sort_values(key, ascending=ascending, na_position="last", kind="stable")
