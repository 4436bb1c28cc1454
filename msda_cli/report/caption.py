"""A report's caption: what the cells show, what was left out, and how to fill an empty table."""

from __future__ import annotations

from msda_cli.report import paper
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
    recipes = paper.recipes_for(spec)
    arch = _values_of(spec, "arch")
    if recipes:
        cmd = f"msda train --recipe {recipes[0]}" + (f" --arch {','.join(arch)}" if len(arch) > 1 else "")
        shown = ", ".join(recipes[:12]) + (f" (+{len(recipes) - 12} more)" if len(recipes) > 12 else "")
        how = f"recipes for this table: {shown}; e.g. `{cmd} --seeds 0,1,2`"
    else:
        methods = _values_of(spec, "method")
        cmd = "msda train --recipe RECIPE" + (f" --method {','.join(methods)}" if methods else "") \
            + (f" --arch {','.join(arch)}" if arch else "") + " --seeds 0,1,2"
        how = f"produce one with `{cmd}`" + (f" ({spec.recipe_hint})" if spec.recipe_hint else "")
    return f"No finished run matches this table yet; {how}. See `msda recipes list`."


def _values_of(spec: TableSpec, key: str) -> list[str]:
    """The plain values the table's headers (else the table) filter `key` on, in header order."""
    out: list[str] = []
    for h in (*spec.rows, *spec.cols):
        v = h.where.get(key, spec.where.get(key))
        if isinstance(v, str) and v not in out:
            out.append(v)
    v = spec.where.get(key)
    if isinstance(v, str) and v not in out:
        out.append(v)
    return out
