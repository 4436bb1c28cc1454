"""A report's caption: what the cells show, what was left out, and how to fill an empty table."""

from __future__ import annotations

from msda_cli.report.epochs import BEST
from msda_cli.report.results import Report
from msda_cli.report.spec import TableSpec


def caption(report: Report, spec: TableSpec) -> str:
    parts = []
    if spec.source is not None:  # a paper table: the caption's first sentence is the title
        rest = spec.caption.split(". ", 1)[1] if ". " in spec.caption else ""
        if rest:
            parts.append(rest.rstrip(".") + ".")
    counts = report.seed_counts
    if counts:
        lo, hi = min(counts), max(counts)
        unit = "run" if spec.averages else "seed"  # Table 6's cells average folds too: n counts runs
        n_text = f"n = {lo} {unit}{'s' if lo != 1 else ''} per cell" if lo == hi else f"n = {lo}–{hi} {unit}s per cell"
        parts.append(f"Cells: mean ± sample standard deviation over {averaged_over(spec)} (ddof = 1); one {unit} "
                     f"shows the value alone; {n_text}.")
    if report.best_per and counts:
        where = {"column": "per column", "row": "per row"}[report.best_per]
        parts.append(f"Bold: best {where} ({'lower' if report.lower_is_better else 'higher'} is better).")
    if report.show_paper:
        parts.append("In parentheses: the published value and our difference to it (ours − paper).")
    parts.extend(report.notes)
    return " ".join(parts)


def empty_hint(spec: TableSpec) -> str:
    """How to produce the runs of a table that has none yet."""
    if spec.source is None:  # an ad-hoc pivot
        return ("No finished run matches; train one with `msda train --recipe NAME` "
                "(see `msda recipes list`) and evaluate it, or loosen --where.")
    return (f"No finished run matches this table yet; `msda reproduce --table {spec.id} --seeds 0,1,2` trains "
            "every cell (`--dry-run` shows each cell's recipe and overrides).")


def epoch_notes(spec: TableSpec, epoch: str, n_final: int = 0) -> list[str]:
    """Which epoch the cells show, and (in a paper table) which one the paper reports, in its words."""
    if epoch == BEST:
        shown = ("Epoch: each run's best (the highest validation top-1 where a validation split is held out, "
                 "else the highest test top-1) for the clean test metrics; other measurements are of the stored "
                 "checkpoint.")
        if n_final:
            shown += f" {n_final} run(s) without per-epoch rows show their final values."
    else:
        shown = "Epoch: each run's final."
    number = spec.number if spec.number is not None else spec.paper_table
    if spec.source is None or not number:  # an ad-hoc pivot, or a table of no paper
        return [shown] if epoch == BEST else []
    if not spec.epoch_note:
        return [shown + " The paper does not say which epoch it reports."]
    return [shown + f" The paper reports the {spec.epoch} epoch ({spec.epoch_note})."]


def averaged_over(spec: TableSpec) -> str:
    """What a cell's mean runs over: seeds, and the keys the spec averages too (`data.options.fold` -> folds)."""
    return " and ".join(["seeds"] + [f"{key.rsplit('.', 1)[-1]}s" for key in spec.averages])


def selection_notes(selection, left_out, over: str = "seeds") -> list[str]:
    """The selection rule and the setting it chose in each cell, by row."""
    if selection is None:
        return []
    by_row: dict[str, list[str]] = {}
    for cell, choices in left_out.choices.items():
        row, _, col = cell.rpartition(" / ")
        chosen = next((c for c in choices if c.chosen), None)
        if len(choices) > 1 or (chosen is not None and chosen.label):
            by_row.setdefault(row, []).append(f"{col} {chosen.label if chosen else 'none (no run has the metric)'}")
    shown = "; ".join(f"{row}: {', '.join(cols)}" for row, cols in by_row.items())
    return [f"Setting chosen per cell by the {selection.describe(over)}; its runs give the numbers shown"
            + (f" ({shown})." if shown else ".") + " --runs lists every candidate."]
