"""`msda report --select-by/--over` (a cell's setting chosen by validation) and `--epoch final|best`,
on hand-built stores."""

from __future__ import annotations

import pytest

from msda_cli.metric_names import EVAL, TEST_TOP1, TEST_TOP5, TOP1, TOP5, TRAIN, VAL_TOP1
from msda_cli.errors import MsdaError
from msda_cli.report import TABLES, build_report, render
from msda_cli.report.choice import make_selection
from msda_cli.store import Store
from test_report import _run, plan_config


def _iris(table="mixupe-4", col="Mixup"):
    return plan_config(table, "Iris", col)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "msda.db")
    mixup, ids = _iris(), {}
    # alpha 0.1: the better test top-1 (70, 72) but the worse validation (80, 82);
    # alpha 1: validation 90, 88 (the best mean), test 60, 62
    for alpha, vals, tests in ((0.1, (80.0, 82.0), (70.0, 72.0)), (1.0, (90.0, 88.0), (60.0, 62.0))):
        for seed, (v, t) in enumerate(zip(vals, tests)):
            ids[(alpha, seed)] = _run(store, mixup, seed, {EVAL: [(TOP1, t), (VAL_TOP1, v)]}, mixer__alpha=alpha)
    # another setting (25 -> 26 epochs) with the best validation of all: never a candidate
    ids["other"] = _run(store, mixup, 0, {EVAL: [(TOP1, 99.0), (VAL_TOP1, 99.0)]}, mixer__alpha=0.5, epochs=26)
    ids["erm"] = _run(store, _iris(col="ERM"), 0, {EVAL: [(TOP1, 65.0), (VAL_TOP1, 70.0)]})
    return store, ids


def test_mixupe_4_chooses_by_validation_by_default_and_plans_the_grid():
    spec = TABLES["mixupe-4"]
    assert spec.select_by == VAL_TOP1 and spec.over == ("mixer.alpha", "mixer.eta")
    from msda_cli.reproduce import Request, planned_cells

    cells, _ = planned_cells(Request(table="mixupe-4", rows=("Iris",)))
    by_col: dict[str, set] = {}
    for cs, res in cells:
        by_col.setdefault(cs.col.label, set()).add((res.config["mixer"].get("alpha"), res.config["mixer"].get("eta")))
    assert len(by_col["ERM"]) == 1 and len(by_col["Mixup"]) == 9 and len(by_col["MixupE"]) == 45
    assert {a for a, _ in by_col["Mixup"]} == {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0}
    assert {e for _, e in by_col["MixupE"]} == {0.0001, 0.001, 0.01, 0.1, 1.0}


def test_the_best_mean_validation_setting_is_chosen_and_its_test_numbers_shown(store):
    store, ids = store
    rep = build_report(store, table="mixupe-4", show_runs=True)
    cell = rep.cell("Iris", "Mixup")
    assert cell.n == 2 and cell.mean == pytest.approx(100 - 61.0)  # alpha 1's test error, not alpha 0.1's 29
    assert sorted(cell.run_ids) == sorted([ids[(1.0, 0)], ids[(1.0, 1)]])
    assert ids["other"] in cell.left_out  # another setting is left out, not chosen
    assert "Iris: " in rep.caption and "Mixup alpha=1" in rep.caption and "validation top-1" in rep.caption
    assert cell.choices == ["alpha=0.1: 81.00 (n=2)", "* alpha=1: 89.00 (n=2)"]
    text = render(rep, "markdown")
    assert "[chosen among: alpha=0.1: 81.00 (n=2); * alpha=1: 89.00 (n=2)]" in text
    assert rep.cell("Iris", "ERM").mean == pytest.approx(35.0)


def test_selection_by_arguments_on_a_table_without_one(store):
    store, ids = store
    from dataclasses import replace

    from msda_cli.report.build import build_table
    from msda_cli.report.frame import prepare

    # by test top-1 instead, on a table that chooses by nothing itself: alpha 0.1 wins, and the caption warns
    spec = replace(TABLES["mixupe-4"], select_by=None, over=())
    rep = build_table(prepare(store.final_metrics_frame(), []), spec, None, {}, False, False, False,
                      selection=make_selection(TOP1, "mixer.alpha", spec))
    assert rep.cell("Iris", "Mixup").mean == pytest.approx(100 - 71.0)
    assert "selected on the test set (optimistic)" in rep.caption


def test_a_table_chosen_by_validation_is_not_tuned_on_the_test_set(store, msda, db_path):
    store, ids = store
    with pytest.raises(MsdaError, match="on its test set"):
        build_report(store, table="mixupe-4", select_by=TOP1, over="mixer.alpha")
    Store(db_path)
    r = msda("report", "--table", "mixupe-4", "--select-by", "top1")
    assert r.code == 2 and "--select-by top1" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "optimistic" not in build_report(store, table="mixupe-4").caption


def test_without_selection_the_grid_runs_are_another_setting(store):
    store, ids = store
    from dataclasses import replace

    from msda_cli.report.build import build_table
    from msda_cli.report.frame import prepare

    spec = replace(TABLES["mixupe-4"], select_by=None, over=())
    rep = build_table(prepare(store.final_metrics_frame(), []), spec, None, {}, False, False, False)
    # the plan's alpha is the recipe's 1.0: only those runs count
    assert rep.cell("Iris", "Mixup").mean == pytest.approx(100 - 61.0)
    assert "chosen" not in rep.caption


def _epoch_store(tmp_path, per_epoch):
    store = Store(tmp_path / "msda.db")
    cfg = plan_config("2", "Mixup", "RN56")
    rid = _run(store, cfg, 0, {EVAL: [(TOP1, per_epoch[TEST_TOP1][-1])],
                               TRAIN: [(name, v, e) for name, values in per_epoch.items()
                                       for e, v in enumerate(values)]})
    return store, rid


def test_epoch_best_is_the_highest_test_top1_without_a_val_split(tmp_path):
    store, _ = _epoch_store(tmp_path, {TEST_TOP1: [50.0, 70.0, 70.0, 60.0]})
    final = build_report(store, rows="method", cols="arch", epoch="final")
    best = build_report(store, rows="method", cols="arch", epoch="best")
    assert final.cell("Mixup", "RN56").mean == 60.0 and best.cell("Mixup", "RN56").mean == 70.0
    assert "best" in best.caption and "final" not in final.caption.lower().split("epoch:")[0]


def test_epoch_best_ties_go_to_the_last_epoch_as_in_the_cutmix_code(tmp_path):
    # epochs 1 and 2 share the best top-1; CutMix's `is_best = err1 <= best_err1` keeps epoch 2 (and its top-5)
    store, _ = _epoch_store(tmp_path, {TEST_TOP1: [50.0, 70.0, 70.0, 60.0], TEST_TOP5: [80.0, 85.0, 90.0, 95.0]})
    best = build_report(store, rows="method", cols="arch", metric=TOP5, epoch="best")
    assert best.cell("Mixup", "RN56").mean == 90.0


def test_epoch_best_follows_the_validation_split_where_there_is_one(tmp_path):
    store, _ = _epoch_store(tmp_path, {TEST_TOP1: [50.0, 70.0, 60.0], VAL_TOP1: [80.0, 70.0, 90.0]})
    best = build_report(store, rows="method", cols="arch", epoch="best")
    assert best.cell("Mixup", "RN56").mean == 60.0  # epoch 2: the best validation, not the best test


def test_tables_state_their_epoch_and_the_caption_says_it(tmp_path):
    assert TABLES["dcutmix-1"].epoch == "best" and "best" in TABLES["dcutmix-1"].epoch_note
    store, _ = _epoch_store(tmp_path, {TEST_TOP1: [50.0, 70.0, 60.0]})
    rep = build_report(store, table="2")
    assert "Epoch: each run's final. The paper does not say which epoch" in rep.caption
    assert build_report(store, table="2", epoch="best").cell("Mixup", "RN56").mean == 70.0
    assert 'The paper reports the best epoch (the CutMix paper' in build_report(store, table="dcutmix-1").caption
    # Table 2's baselines are the Co-Mixup paper's, whose README cites the last checkpoint
    assert TABLES["dcutmix-2"].epoch == "final"
    caption = build_report(store, table="dcutmix-2").caption
    assert "The paper reports the final epoch (the Co-Mixup paper" in caption and "80.19%" in caption
    assert "CutMix paper" not in caption


@pytest.mark.parametrize("args, needle", [
    (["--epoch", "last"], "--epoch"),
    (["--table", "mixupe-4", "--select-by", "test_top5"], "--select-by"),
    (["--table", "mixupe-4", "--select-by", "val_top1", "--over", "mixer.nokey"], "--over"),
    (["--table", "2", "--select-by", "val_top1"], "--over"),
    (["--select-by", "val_top1", "--over", "mixer.alpha"], "--table"),
])
def test_bad_selection_or_epoch_is_one_line_exit_2(msda, db_path, args, needle):
    Store(db_path)
    r = msda("report", *args)
    assert r.code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_reproduce_grid_plans_one_run_per_point_of_every_cell():
    from msda_cli.reproduce import Request, planned_cells

    cells, _ = planned_cells(Request(table="2", rows=("Mixup",), archs=("resnet56",), grid=("mixer.alpha=0.5,1",),
                                     sets=("data.val_fraction=0.1",)))  # a validation split to choose by
    assert sorted(res.config["mixer"]["alpha"] for _, res in cells) == [0.5, 1.0]
    # chosen on the test set instead: no validation split needed (table 2 chooses by nothing itself)
    cells, _ = planned_cells(Request(table="2", rows=("Mixup",), archs=("resnet56",), grid=("mixer.alpha=0.5,1",),
                                     select_by="top1"))
    assert len(cells) == 2
    assert all(res.arch == "resnet56" and res.method == "mixup" for _, res in cells)
