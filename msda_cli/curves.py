"""Runs in figures: labels that name a run by its setting, and training curves of runs or of table cells.

A run is labelled by method (with its hyperparameters), architecture, data set and seed, never by
its id; a figure's legend names only what its runs differ in, and its title what they share.
`msda plot curves` draws one line per run, or one mean ± std band per report cell (the runs of one
setting over seeds), of a per-epoch training metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from msda_cli import metric_names as names
from msda_cli.errors import MsdaError

from msda_cli.choices import CURVE_METRICS  # one source with --help
QUIET = {"mask_mode"}  # how masks are batched: the same mask distribution, not a setting a reader compares


def _number(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def run_setting(run) -> dict:
    """The parts of a stored run a reader tells runs apart by: method, its hyperparameters, arch, data set, seed."""
    from msda_cli.data import DATASETS
    from msda_cli.mixing import MIXERS
    from msda_cli.models import MODELS

    config = json.loads(run.config or "{}")
    mixer = {k: v for k, v in (config.get("mixer") or {}).items()
             if not isinstance(v, (dict, list)) and k not in QUIET and not (k == "smoothing" and not v)}
    return {"method": MIXERS.label(run.method), "hparams": ", ".join(f"{k} {_number(v)}" for k, v in mixer.items()),
            "arch": MODELS.label(run.arch), "dataset": DATASETS.label(run.dataset), "seed": run.seed,
            "epochs": config.get("epochs")}


def run_label(run, parts: tuple[str, ...] = ("method", "arch", "seed")) -> str:
    """`CutMix (alpha 1), PreActResNet-18, seed 0`: the run's setting, in the given parts."""
    s = run_setting(run)
    words = []
    for part in parts:
        if part == "method":
            words.append(s["method"] + (f" ({s['hparams']})" if s["hparams"] else ""))
        elif part == "seed":
            words.append(f"seed {s['seed']}")
        else:
            words.append(str(s[part]))
    return ", ".join(words)


def distinct_labels(runs: list) -> list[str]:
    """One legend label per run, naming the method and the other parts in which the runs differ."""
    settings = [run_setting(r) for r in runs]
    parts = ["method"] + [p for p in ("arch", "dataset", "seed") if len({s[p] for s in settings}) > 1]
    labels = [run_label(r, tuple(parts)) for r in runs]
    # runs of one setting (trained again, or for other epochs) are told apart by their ids only
    return [f"{label}, run {r.id}" if labels.count(label) > 1 else label for r, label in zip(runs, labels)]


def common_title(runs: list) -> str:
    """What the runs share, for a figure's title: `Digits, Digits CNN, 10 epochs` (method too when one)."""
    settings = [run_setting(r) for r in runs]
    words = []
    for key in ("method", "dataset", "arch"):
        values = {(s[key], s["hparams"]) if key == "method" else s[key] for s in settings}
        if len(values) == 1:
            value = values.pop()
            words.append(value[0] + (f" ({value[1]})" if value[1] else "") if key == "method" else value)
    epochs = {s["epochs"] for s in settings}
    if len(epochs) == 1 and None not in epochs:
        words.append(f"{epochs.pop()} epochs")
    return ", ".join(words)


@dataclass
class Curve:
    label: str
    epochs: np.ndarray  # 1-based
    mean: np.ndarray
    std: np.ndarray | None  # None for one run
    n: int


def run_curve(store, run_id: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs 1-based, values) of a per-epoch training metric of one run; MsdaError when it has none."""
    rows = sorted((m.epoch, m.value) for m in store.metrics(run_id, names.TRAIN)
                  if m.name == metric and m.epoch is not None)
    if not rows:
        raise MsdaError(f"run {run_id} has no per-epoch {metric!r} (it has not finished an epoch)")
    epochs, values = zip(*rows)
    return np.asarray(epochs) + 1, np.asarray(values, dtype=float)


def check_metric(metric: str) -> None:
    if metric not in CURVE_METRICS:
        raise MsdaError(f"--metric must be one of {', '.join(CURVE_METRICS)}; got {metric!r}")


def run_curves(store, run_ids: list[str], metric: str) -> tuple[list[Curve], list]:
    """One curve per run, labelled by what the runs differ in; and the runs."""
    runs = [store.get_run(r) for r in run_ids]
    if len({r.id for r in runs}) < len(runs):
        raise MsdaError("a run is named twice")
    curves = []
    for run, label in zip(runs, distinct_labels(runs)):
        epochs, values = run_curve(store, run.id, metric)
        curves.append(Curve(label, epochs, values, None, 1))
    return curves, runs


def band(store, label: str, run_ids: list[str], metric: str) -> Curve:
    """Mean ± sample std (ddof 1) over runs, epoch by epoch, over the epochs every run has."""
    series = [run_curve(store, r, metric) for r in run_ids]
    length = min(len(e) for e, _ in series)
    values = np.stack([v[:length] for _, v in series])
    std = values.std(0, ddof=1) if len(series) > 1 else None
    return Curve(label, series[0][0][:length], values.mean(0), std, len(series))


def cell_curves(store, table: str | None, where: list[str], cell: str | None, metric: str) -> tuple[list[Curve], list]:
    """One band per cell with runs of a report (a paper table, or the method × arch pivot of `where`),
    or of the one cell `ROW/COL` (labels as the report prints them); and the runs."""
    from msda_cli.report import build_report

    built = build_report(store, table=table, where=where, show_runs=True)
    wanted = None
    if cell is not None:
        if "/" not in cell:
            raise MsdaError(f"--cell must be ROW/COL, as the table labels them; got {cell!r}")
        wanted = tuple(part.strip().lower() for part in cell.rsplit("/", 1))
    groups = []
    for row, cells in zip(built.rows, built.cells):
        row_text = " / ".join(row)
        for col, c in zip(built.columns, cells):
            if not c.run_ids or c.derived:
                continue
            if wanted and wanted not in ((row_text.lower(), str(col).lower()), (row[-1].lower(), str(col).lower())):
                continue
            groups.append((f"{row_text}, {col} (n = {len(c.run_ids)})", c.run_ids))
    if not groups:
        what = f"cell {cell!r}" if cell else "any cell"
        raise MsdaError(f"no finished run in {what} of the table; see `msda report` with the same --table/--where")
    curves = [band(store, label, ids, metric) for label, ids in groups]
    return curves, [store.get_run(r) for _, ids in groups for r in ids]


def plot_curves(curves: list[Curve], metric: str, title: str, out, dpi: int | None = None) -> None:
    """Every curve against the epoch in one axis; bands shade mean ± std."""
    from msda_cli.plots import figure, integer_ticks

    with figure(out, (4.8, 3.0), dpi) as fig:
        ax = fig.subplots()
        for i, c in enumerate(curves):
            colour = f"C{i % 10}"
            ax.plot(c.epochs, c.mean, color=colour, marker="o" if len(c.epochs) <= 30 else None, label=c.label)
            if c.std is not None:
                ax.fill_between(c.epochs, c.mean - c.std, c.mean + c.std, color=colour, alpha=0.2, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(CURVE_METRICS[metric] + (" (mean ± std)" if any(c.std is not None for c in curves) else ""))
        integer_ticks(ax, "x")
        if metric == names.LR and all((c.mean > 0).all() for c in curves):
            ax.set_yscale("log")
        ax.legend()
        ax.set_title(title)
