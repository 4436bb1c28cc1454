"""MixupE Table 8: the baseline columns take either 400-epoch runs (the plan) or Verma et al.'s 1200-epoch ones, one
setting per cell, and the caption names the cells the 1200-epoch setting filled."""

from __future__ import annotations

from msda_cli.report import TABLES, build_report
from msda_cli.report.plan import resolve
from msda_cli.store import Store
from test_report_tables import Filler

ROW = "Rotation U(-20, 20)"
COLS = ("Mixup (α = 1)", "MixupE (α = 1)")
LONG = {"epochs": 1200, "schedule.milestones": [400, 800]}


def _cell(col):
    spec = TABLES["mixupe-8"]
    return spec.cell(next(h for h in spec.rows if h.label == ROW), next(h for h in spec.cols if h.label == col))


def _report(tmp_path, runs):
    f = Filler()
    ids = [f.run(resolve(_cell(col).plan).config, _cell(col).metric, value, seed, "t", changes=changes)
           for col, value, seed, changes in runs]
    store = Store(tmp_path / "msda.db")
    f.write(store)
    return build_report(store.final_metrics_frame(), table="mixupe-8"), ids


def test_a_baseline_cell_takes_the_1200_epoch_runs_where_it_has_no_400_epoch_run(tmp_path):
    rep, (long0, long1, mixupe_long) = _report(tmp_path, [(COLS[0], 60.0, 0, LONG), (COLS[0], 62.0, 1, LONG),
                                                          (COLS[1], 70.0, 0, LONG)])
    cell = rep.cell(ROW, COLS[0])
    assert (sorted(cell.run_ids), cell.mean) == (sorted([long0, long1]), 61.0)
    assert "Filled by the alternative setting epochs=1200, schedule.milestones=[400, 800]" in rep.caption
    assert f"{ROW} / {COLS[0]}" in rep.caption and f"{ROW} / {COLS[1]}" not in rep.caption
    assert rep.cell(ROW, COLS[1]).run_ids == [] and rep.cell(ROW, COLS[1]).left_out == [mixupe_long]  # no alternative


def test_a_cell_never_pools_the_two_epoch_counts_and_prefers_its_plan(tmp_path):
    rep, (short, long_) = _report(tmp_path, [(COLS[0], 50.0, 0, {}), (COLS[0], 60.0, 1, LONG)])
    cell = rep.cell(ROW, COLS[0])
    assert (cell.run_ids, cell.left_out, cell.mean) == ([short], [long_], 50.0)
    assert "Filled by the alternative" not in rep.caption and "400 epochs as planned" in rep.caption
