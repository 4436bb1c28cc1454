"""`msda report`: the papers' comparison tables and ad-hoc pivots over every stored run.

    from msda_cli.report import list_tables, build_report, render, render_rich
    report = build_report(store.final_metrics_frame(), table="2", paper=True, subsets=store.list_subsets())
    print(render(report, "markdown"))            # or "latex", "csv", "json"
    rich.print(render_rich(report))               # terminal

`build_report` also accepts a `Store` in place of the frame (it then loads the frame and the
subsets itself). Modules, in the order data flows through them:

    spec        how a table is declared (Paper, MetricSpec, Header, TableSpec, CellSpec, and each cell's Plan)
    tables/     the papers' tables, one module per paper, msda's digits table, and their registry (TABLES)
    settings    a run's setting: its config without the keys that cannot change a result (NOT_SETTINGS)
    plan        a cell's plan resolved as `msda train` resolves it: the setting its runs have
    paper       published values (paper_values/<paper>.yaml)
    match       value matchers of filters;  filters: `--where` parsing and key checks
    frame       the store's frame prepared once: runs, flattened configs, settings, subsets, metric values
    labels      display labels and order of methods, architectures, data sets, keys, metrics
    adhoc       `--rows/--cols/--metric` as a table declaration
    epochs      the final or the best epoch of each run;  choice: a cell's setting chosen by validation
    build       a declaration + the frame -> a Report (results);  caption: its caption
    render      a Report in every format, through msda_cli.render
"""

from __future__ import annotations

from msda_cli.report.build import build_report
from msda_cli.report.epochs import epoch_rows
from msda_cli.report.render import FORMATS, check_label, render, render_rich
from msda_cli.report.results import Cell, Report
from msda_cli.report.spec import TableSpec
from msda_cli.report.tables import TABLES, list_tables

__all__ = ["Cell", "FORMATS", "Report", "TABLES", "TableSpec", "build_report", "check_label", "epoch_rows",
           "list_tables", "render", "render_rich"]
