"""Rendering a Report: rich (terminal), Markdown, LaTeX (booktabs), CSV and JSON.

Display formats show `mean ± std` (the value alone for one seed), the best cell of each
comparison group in bold, `–` for missing cells, and with `--paper` the published value and
our difference beside each cell; the table itself is written by msda_cli.render. CSV and JSON
are long-format, one record per cell, with mean, std, n and the published value as separate
fields.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

from msda_cli.errors import MsdaError
from msda_cli.render import (
    FORMATS, MISSING, TextCell, TextTable, rich_to_text, significant, to_latex, to_markdown, to_rich,
)
from msda_cli.report.results import Cell, Report

__all__ = ["FORMATS", "check_label", "records", "render", "render_rich", "report_table"]


# ----- cell text ------------------------------------------------------------------------
def value_text(cell: Cell, decimals: int, show_n: bool = False) -> str:
    """Our part of a cell: `–`, `74.10`, `74.10 ± 0.20` (`(n=2)` appended when n varies)."""
    if cell.mean is None:
        return MISSING
    if cell.derived:
        return f"{cell.mean:+.{decimals}f}"
    text = f"{cell.mean:.{decimals}f}"
    if cell.std is not None:
        text += f" ± {cell.std:.{decimals}f}"
    if show_n and cell.n > 1:
        text += f" (n={cell.n})"
    return text


def extra_text(cell: Cell, report: Report) -> str:
    """What follows our value: the published value and difference, run ids (and those left out)."""
    d = report.decimals
    parts = []
    if report.show_paper and cell.paper is not None:
        paper = f"{cell.paper:+.{d}f}" if cell.derived else f"{cell.paper:.{d}f}"
        if cell.diff is not None and not cell.derived:
            parts.append(f"(paper {paper}; {cell.diff:+.{d}f})")
        else:
            parts.append(f"(paper {paper})")
    if report.show_runs and cell.run_ids:
        parts.append("[" + ", ".join(cell.run_ids) + "]")
    if report.show_runs and cell.left_out:
        parts.append("[left out, another setting: " + ", ".join(cell.left_out) + "]")
    if report.show_runs and cell.choices:
        parts.append("[chosen among: " + "; ".join(cell.choices) + "]")
    return " ".join(parts)


def _row_labels(report: Report) -> list[list[str]]:
    """Row labels per level; a repeated outer label is printed once per group."""
    out, prev = [], None
    for path in report.rows:
        labels = list(path)
        if len(path) > 1 and prev is not None and path[:-1] == prev[:-1]:
            labels[:-1] = [""] * (len(path) - 1)
        out.append(labels)
        prev = path
    return out


def table_label(report: Report) -> str:
    """A LaTeX label unique per table: its id, or for a pivot its title as a slug (metric, rows, columns)."""
    name = report.table_id or re.sub(r"[^a-z0-9]+", "-", report.title.lower()).strip("-")
    return f"tab:msda-{name}"


def check_label(label: str | None) -> None:
    if label is not None and not re.fullmatch(r"[A-Za-z0-9:_.\-]+", label):
        raise MsdaError(f"--label must be letters, digits and :_.- only, got {label!r}")


def paper_caption(caption: str) -> str:
    """A caption for a paper: the sentences that tell how to use the tool (a command, an option) left out."""
    sentences = re.split(r"(?<=\.)\s+", caption.strip())
    return " ".join(s for s in sentences if "`" not in s and not re.search(r"(^|\s)--[a-z]", s))


def report_table(report: Report, latex: bool = False, caption: str | None = None, label: str | None = None,
                 landscape: bool = False) -> TextTable:
    """The report as a table of text: row labels, then one `mean ± std` cell per column.

    For LaTeX (`latex`): the caption without command-line hints, empty cells `–` alone (no published
    value inside them), the tabular scaled down to the column when wider, a sidewaystable with
    `landscape`; `caption` and `label` replace the defaults."""
    show_n = len(set(report.seed_counts)) > 1
    rows = []
    for labels, line in zip(_row_labels(report), report.cells):
        rows.append([TextCell(x) for x in labels] + [
            TextCell(value_text(c, report.decimals, show_n), bold=c.best,
                     aside="" if latex and c.mean is None else extra_text(c, report)) for c in line])
    if caption is None:
        caption = paper_caption(report.caption) if latex else report.caption
    return TextTable(
        headers=[*report.row_names, *report.columns], rows=rows,
        align="l" * len(report.row_names) + "r" * len(report.columns), title=report.title, caption=caption,
        label=label or table_label(report), label_columns=len(report.row_names), fit=latex, landscape=landscape,
    )


# ----- CSV / JSON ------------------------------------------------------------------------
def _num(x: float | None):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else significant(x)


def records(report: Report) -> list[dict]:
    out = []
    for path, row in zip(report.rows, report.cells):
        for col, cell in zip(report.columns, row):
            rec = {name or f"level{k}": label for k, (name, label) in enumerate(zip(report.row_names, path))}
            rec.update(column=col, mean=_num(cell.mean), std=_num(cell.std), n=cell.n,
                       paper=_num(cell.paper), paper_std=_num(cell.paper_std), diff=_num(cell.diff),
                       best=cell.best, run_ids=list(cell.run_ids), left_out=list(cell.left_out))
            out.append(rec)
    return out


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    names = [name or f"level{k}" for k, name in enumerate(report.row_names)]
    fields = [*names, "column", "mean", "std", "n", "paper", "paper_std", "diff", "best", "run_ids", "left_out"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for rec in records(report):
        rec = {k: ("" if v is None else v) for k, v in rec.items()}
        rec["run_ids"], rec["left_out"] = ";".join(rec["run_ids"]), ";".join(rec["left_out"])
        rec["best"] = "1" if rec["best"] else "0"
        for k in ("mean", "std", "paper", "paper_std", "diff"):
            if rec[k] != "":
                rec[k] = repr(float(rec[k]))
        w.writerow(rec)
    return buf.getvalue()


def to_json(report: Report) -> str:
    doc = {
        "table": report.table_id, "title": report.title, "paper": report.paper, "caption": report.caption,
        "metric": report.metric, "lower_is_better": report.lower_is_better, "best_per": report.best_per,
        "row_names": report.row_names, "rows": [list(r) for r in report.rows], "columns": report.columns,
        "empty": report.empty, "cells": records(report),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# ----- entry points ------------------------------------------------------------------------
def render_rich(report: Report, caption: str | None = None):
    """For the terminal: a rich Group of the title, the Table (bold best cells) and the caption (or `caption`)."""
    return to_rich(report_table(report, caption=caption))


def render(report: Report, fmt: str, caption: str | None = None, label: str | None = None,
           landscape: bool = False) -> str:
    """markdown | latex | csv | json (| rich: the terminal table as plain text); `caption` replaces the
    caption; `label` and `landscape` are LaTeX's (see `report_table`)."""
    fmt = (fmt or "").lower()
    if fmt in ("markdown", "md"):
        return to_markdown(report_table(report, caption=caption))
    if fmt in ("latex", "tex"):
        return to_latex(report_table(report, latex=True, caption=caption, label=label, landscape=landscape))
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "rich":
        return rich_to_text(render_rich(report, caption))
    raise MsdaError(f"unknown report format {fmt!r}; choose from: {', '.join(FORMATS)}")
