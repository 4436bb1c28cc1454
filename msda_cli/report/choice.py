"""Choosing a cell's setting by validation: `--select-by val_top1 --over mixer.alpha,mixer.eta`.

The protocol of MixupE Table 4: "(α, η) is chosen based on the best validation accuracy, corresponding
to which we report the test accuracy". A cell's candidates are the runs of its plan's setting with
the `over` keys left free (the grid); they are grouped by their values of those keys, each group's
selection metric is averaged over its runs (seeds), and the best group is the cell's: its runs, all
of one setting, give the test numbers shown. A group whose runs lack the metric cannot be chosen
(unless it is the only one: then there is nothing to choose). The groups, their means and the choice
are kept for the caption and `--runs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msda_cli import metric_names as names
from msda_cli.checks import check_choice
from msda_cli.errors import MsdaError
from msda_cli.report.match import as_number, is_missing
from msda_cli.report.spec import MetricSpec, TableSpec

# the metrics a setting may be chosen by, and whether lower is better (one source with --help)
from msda_cli.choices import SELECT_METRICS

VALIDATION = (names.VAL_TOP1, names.VAL_LOSS)  # the metrics of a held-out split, not of the test set


@dataclass(frozen=True)
class Selection:
    metric: str
    over: tuple[str, ...]

    @property
    def lower_is_better(self) -> bool:
        return SELECT_METRICS[self.metric]

    @property
    def metric_spec(self) -> MetricSpec:
        return MetricSpec(self.metric, names.EVAL)

    def describe(self, over: str = "seeds") -> str:
        what = {names.VAL_TOP1: "validation top-1", names.VAL_LOSS: "validation loss", names.TOP1: "test top-1"}
        return (f"{'lowest' if self.lower_is_better else 'best'} mean {what[self.metric]} over {over} "
                f"among the values of {', '.join(self.over)}"
                + ("" if self.metric in VALIDATION else ", selected on the test set (optimistic)"))


@dataclass
class Choice:
    """One group of a cell's candidates: its values of the `over` keys, mean selection metric, runs."""

    label: str
    score: float | None
    run_ids: list[str]
    chosen: bool = False

    def text(self, decimals: int = 2) -> str:
        score = "–" if self.score is None else f"{self.score:.{decimals}f}"
        return f"{'* ' if self.chosen else ''}{self.label or '(one setting)'}: {score} (n={len(self.run_ids)})"


def make_selection(select_by: str | None, over: str | tuple | list | None, spec: TableSpec) -> Selection | None:
    """The request's selection (`--select-by`, `--over`), else the table's own; MsdaError on bad input."""
    keys = tuple(k.strip() for k in over.split(",") if k.strip()) if isinstance(over, str) else tuple(over or ())
    metric = select_by or spec.select_by
    keys = keys or spec.over
    if metric is None and not keys:
        return None
    if metric is None:
        raise MsdaError("--over names the keys a setting is chosen among; give --select-by METRIC too "
                        f"({', '.join(SELECT_METRICS)})")
    check_choice("--select-by", metric, tuple(SELECT_METRICS))
    if spec.select_by in VALIDATION and metric not in VALIDATION:
        raise MsdaError(f"--select-by {metric} would tune table {spec.id} on its test set; the paper chooses by "
                        f"{spec.select_by} (leave --select-by out, or pick {' or '.join(VALIDATION)})")
    if not keys:
        raise MsdaError("--select-by needs --over KEY,.. (the config keys whose values it chooses among)")
    if spec.source is None:
        raise MsdaError("--select-by chooses among the settings of a paper table's cells (--table ID)")
    return Selection(metric, keys)


def _key(value) -> tuple:
    """Sort numbers as numbers, then text; missing first."""
    if is_missing(value):
        return (0, 0.0, "")
    number = as_number(value)
    return (1, number, "") if number is not None else (2, 0.0, str(value))


def _shown(value) -> str:
    if is_missing(value):
        return "–"
    number = as_number(value)
    return f"{number:g}" if number is not None and not isinstance(value, str) else str(value)


def choose(prep, positions: np.ndarray, counted: np.ndarray, selection: Selection,
           scores: np.ndarray) -> tuple[np.ndarray, list[Choice]]:
    """(positions of the chosen group, every group) among the candidate runs at `positions`; the mean
    of `scores` (the selection metric per run) over each group's counted runs decides."""
    if not len(positions):
        return positions, []
    columns = [prep.column(key) for key in selection.over]
    values = [[None if col is None else col.iloc[p] for col in columns] for p in positions.tolist()]
    groups: dict[tuple, list[int]] = {}
    for pos, vals in zip(positions.tolist(), values):
        groups.setdefault(tuple(_key(v) for v in vals), []).append(pos)
    shown = {tuple(_key(v) for v in vals): vals for vals in values}
    choices, members = [], []
    for key in sorted(groups):
        pos = np.array(groups[key])
        s = scores[pos[counted[pos]]]
        s = s[~np.isnan(s)]
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={_shown(v)}" for k, v in zip(selection.over, shown[key])
                          if not is_missing(v))
        choices.append(Choice(label, float(np.mean(s)) if len(s) else None, [str(prep.run_ids[p]) for p in pos]))
        members.append(pos)
    scored = [i for i, c in enumerate(choices) if c.score is not None]
    if not scored and len(choices) > 1:
        return positions[:0], choices
    sign = 1.0 if selection.lower_is_better else -1.0
    best = min(scored, key=lambda i: sign * choices[i].score) if scored else 0  # ties: the first in value order
    choices[best].chosen = True
    return members[best], choices
