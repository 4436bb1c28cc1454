"""`msda report`: the papers' comparison tables and ad-hoc pivots over every stored run.

    from msda_cli.report import list_tables, build_report, render, render_rich
    report = build_report(store.final_metrics_frame(), table="2", paper=True, subsets=store.list_subsets())
    print(render(report, "markdown"))            # or "latex", "csv", "json"
    rich.print(render_rich(report))               # terminal

`build_report` also accepts a `Store` in place of the frame (it then loads the frame and the
subsets itself). Modules: `specs` (table declarations), `pivot` (filtering and aggregation),
`render` (output formats), `paper_values/*.yaml` (published numbers).
"""

from __future__ import annotations

from typing import Iterable

from msda_cli.report.pivot import Cell, Report, build
from msda_cli.report.render import FORMATS, render, render_rich
from msda_cli.report.specs import TableSpec, list_tables

__all__ = ["Cell", "FORMATS", "Report", "TableSpec", "build_report", "list_tables", "render", "render_rich"]


def build_report(frame, table: str | None = None, rows: str = "method", cols: str = "arch",
                 metric: str | None = None, where: Iterable[str] = (), paper: bool = False,
                 include_unfinished: bool = False, show_runs: bool = False, subsets=None) -> Report:
    """A paper table (`table` = an id of `list_tables()`) or an ad-hoc pivot (`rows` x `cols` of `metric`).

    frame: `Store.final_metrics_frame()` (or a Store). rows/cols: run columns (method, arch,
    dataset, seed, recipe ...), dotted config keys (`mixer.alpha`), `subset.measure`,
    `subset.ratio`; comma-separated for several. metric: ad-hoc default `top1`; also `error`,
    `top5_error`, any stored metric name (`kind:name` to pick a kind); for a paper table, one of
    its metric options (dcutmix-2: `time_ratio`), None for its default. where: `key=value`
    (`key=a,b`, `key!=value`, `params.eps=8` for metric settings). Only finished runs count
    unless include_unfinished. subsets: `Store.list_subsets()` (needed for subset.* keys).
    Raises MsdaError on an unknown table, metric or key, or bad --where syntax.
    """
    return build(frame, table=table, rows=rows, cols=cols, metric=metric, where=where, paper=paper,
                 include_unfinished=include_unfinished, show_runs=show_runs, subsets=subsets)
