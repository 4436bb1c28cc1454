"""A report's caption: what the cells show, what was left out, and how to fill an empty table."""

from __future__ import annotations

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
        n_text = f"n = {lo} seed{'s' if lo != 1 else ''} per cell" if lo == hi else f"n = {lo}–{hi} seeds per cell"
        parts.append(f"Cells: mean ± sample standard deviation over seeds (ddof = 1); one seed shows the value "
                     f"alone; {n_text}.")
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
