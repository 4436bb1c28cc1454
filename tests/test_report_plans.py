"""Every cell is a plan: it resolves to a valid config, and its filter counts exactly the runs of that setting.

For every table, a run made from each cell's plan counts in that cell; a run that differs in one
setting (α, K, prob, η, r, epochs, lr, batch size: whichever the plan has) is left out of it,
listed by the cell and named in the caption. The pooling cases issue 13 found are checked by
name: ImageNet Mixup α = 0.8 / 1 between the two papers, DCutMix Table 4 against Table 3's K rows,
DCutMix Table 1's α and prob, and MixupE's η.
"""

from __future__ import annotations

import json

import pytest

from msda_cli.config import check_names, validate
from msda_cli.report import TABLES, build_report
from msda_cli.report.build import table_plans
from msda_cli.report.plan import resolve
from msda_cli.report.render import paper_caption
from msda_cli.report.settings import NOT_SETTINGS, differing_keys, setting, setting_text
from msda_cli.store import Store
from test_report_tables import Filler

# one setting changed, to a value no plan of any table uses (so the changed run fills no other cell)
CHANGES = {"mixer.alpha": lambda v: v * 1.37, "mixer.k": lambda v: v + 11, "mixer.prob": lambda v: v * 0.37,
           "mixer.eta": lambda v: v * 1.37, "mixer.r": lambda v: 0.37, "epochs": lambda v: v + 1,
           "optim.lr": lambda v: v * 1.37, "batch_size": lambda v: v + 1, "data.cutout": lambda v: v + 3}


def _cells(table_id):
    return [(cs, res) for cs, res in table_plans(TABLES[table_id])]


def _report_cell(rep, cs):
    return rep.cells[rep.rows.index(_padded(rep, cs.row.path))][rep.columns.index(cs.col.label)]


def _padded(rep, path):
    depth = len(rep.rows[0])
    return ("",) * (depth - len(path)) + tuple(path)


@pytest.mark.parametrize("table_id", [t for t in TABLES if TABLES[t].rows])
def test_every_cell_plan_resolves_to_a_valid_config(table_id):
    cells = _cells(table_id)
    assert cells
    for cs, res in cells:
        if res is None:
            assert cs.plan.untrainable, cs.label  # a reason, for the plan and the caption
            continue
        cfg = validate(res.config, source=cs.label)
        check_names(cfg)
        assert (cfg.dataset, cfg.arch, cfg.method) == (res.dataset, res.arch, res.method)
        assert res.setting == setting(json.loads(cfg.model_dump_json()))  # the stored form resolves alike


def test_the_subset_table_plan_resolves_and_trains_on_subsets():
    res = resolve(TABLES["dcutmix-fig5a"].plan)
    assert (res.dataset, res.arch, res.method) == ("cifar100", "pyramidnet110", "dcutmix")
    assert res.plan.subsets.command == "subsample"


@pytest.mark.parametrize("table_id", [t for t in TABLES if TABLES[t].rows])
def test_a_cell_counts_its_plan_and_leaves_out_one_setting_changed(tmp_path, table_id):
    f = Filler()
    expected = {}
    for cs, res in _cells(table_id):
        if res is None:
            continue
        exact = f.run(res.config, cs.metric, 50.0, 0, table_id)
        changed = {}
        for key, change in CHANGES.items():
            value = res.setting.get(key)
            # a key the table chooses among (its `over`) makes a candidate, not another setting (test_report_selection)
            if value is not None and not isinstance(value, bool) and key not in TABLES[table_id].over:
                changed[key] = f.run(res.config, cs.metric, 90.0, 1, table_id, changes={key: change(value)})
        expected[cs.label] = (cs, exact, changed)
    store = Store(tmp_path / "msda.db")
    f.write(store)
    rep = build_report(store.final_metrics_frame(), table=table_id, subsets=[])
    for label, (cs, exact, changed) in expected.items():
        cell = _report_cell(rep, cs)
        assert cell.run_ids == [exact], label
        # left out, with the runs of other cells that share its data set, architecture and method
        assert set(changed.values()) <= set(cell.left_out), label
        for key in changed:
            assert key in _differing(rep.caption), (label, key)
    assert {"epochs", "optim.lr", "batch_size"} <= {k for _, _, ch in expected.values() for k in ch}


def test_every_setting_of_the_changes_is_in_some_plan():
    """The test above changes α, K, prob, η, r, epochs, lr and batch size where a plan has them: each is somewhere."""
    present = {k for spec in TABLES.values() for _, res in table_plans(spec) if res is not None
               for k in CHANGES if res.setting.get(k) is not None}
    assert present == set(CHANGES)


def _cell(table_id, row, col, group=None):
    spec = TABLES[table_id]
    rh = next(h for h in spec.rows if h.label == row and (group is None or h.group == group))
    return spec.cell(rh, next(h for h in spec.cols if h.label == col))


def _differing(caption: str) -> list[str]:
    """The keys the caption says left-out runs differ on."""
    return caption.split("keys that differ: ", 1)[1].split(")", 1)[0].split(", ")


def _store_of(tmp_path, runs):
    """A store of finished runs, each (resolved plan, metric spec, value, seed)."""
    f = Filler()
    ids = [f.run(res.config, ms, value, seed, "t") for res, ms, value, seed in runs]
    store = Store(tmp_path / "msda.db")
    f.write(store)
    return store.final_metrics_frame(), ids


def test_imagenet_mixup_alpha_08_and_1_never_pool(tmp_path):
    """HMix/GMix Table 3 trains Mixup with α = 0.8; DCutMix Tables 3-4 with α = 1 (the CutMix paper's row)."""
    hmix = _cell("3", "Mixup", "Top-1 accuracy")
    dc3, dc4 = _cell("dcutmix-3", "Mixup", "Top-1 Err (%)"), _cell("dcutmix-4", "Mixup", "ImageNet-O AUPR (%)")
    a08, a1 = resolve(hmix.plan), resolve(dc3.plan)
    assert (a08.setting["mixer.alpha"], a1.setting["mixer.alpha"]) == (0.8, 1.0)
    assert resolve(dc4.plan).text == a1.text  # Tables 3 and 4 share their Mixup runs
    assert differing_keys(a08.setting, a1.setting) == ["mixer.alpha"]
    frame, (r08, r1) = _store_of(tmp_path, [(a08, hmix.metric, 78.0, 0), (a1, dc3.metric, 77.0, 0)])
    rep = build_report(frame, table="3")
    assert (rep.cell("Mixup", "Top-1 accuracy").run_ids, rep.cell("Mixup", "Top-1 accuracy").left_out) == ([r08], [r1])
    assert "(keys that differ: mixer.alpha)" in rep.caption
    rep = build_report(frame, table="dcutmix-3")
    assert (rep.cell("Mixup", "Top-1 Err (%)").run_ids, rep.cell("Mixup", "Top-1 Err (%)").left_out) == ([r1], [r08])


def test_dcutmix_table_4_does_not_pool_the_k_rows_of_table_3b(tmp_path):
    table4 = _cell("dcutmix-4", "DCutMix", "ImageNet-O AUPR (%)")
    k_rows = [_cell("dcutmix-3b", str(k), "Top-1 Err (%)", group="DCutMix") for k in (3, 4, 5, 7, 9)]
    own = resolve(table4.plan)
    assert (own.setting["mixer.k"], own.setting["mixer.alpha"]) == (3, pytest.approx(1 / 3))
    runs = [(own, table4.metric, 16.0, 0)] + [(resolve(c.plan), table4.metric, 30.0, 0) for c in k_rows]
    frame, ids = _store_of(tmp_path, runs)
    rep = build_report(frame, table="dcutmix-4")
    cell = rep.cell("DCutMix", "ImageNet-O AUPR (%)")
    assert (cell.n, cell.mean, sorted(cell.left_out)) == (1, 16.0, sorted(ids[1:]))
    assert "5 run(s)" in rep.caption and "mixer.alpha, mixer.k" in rep.caption


@pytest.mark.parametrize("row,col,key,other", [("DCutMix", "CIFAR-100 PyramidNet-200", "mixer.alpha", 0.2),
                                               ("DCutMix", "CIFAR-100 PyramidNet-200", "mixer.prob", 1.0),
                                               ("DCutMix", "CIFAR-100 PyramidNet-110", "mixer.prob", 0.5),
                                               ("CutMix", "CIFAR-100 PyramidNet-200", "mixer.prob", 1.0),
                                               ("CutMix", "CIFAR-10 PyramidNet-200", "mixer.prob", 1.0),
                                               ("CutMix", "CIFAR-100 PyramidNet-110", "mixer.prob", 1.0),
                                               ("Manifold Mixup", "CIFAR-100 PyramidNet-200", "mixer.alpha", 2.0),
                                               ("Manifold Mixup", "CIFAR-10 PyramidNet-200", "mixer.alpha", 2.0),
                                               ("Manifold Mixup", "CIFAR-100 PyramidNet-200", "data.cutout", 0)])
def test_dcutmix_table_1_filters_alpha_and_prob(tmp_path, row, col, key, other):
    cs = _cell("dcutmix-1", row, col)
    res = resolve(cs.plan)
    assert res.setting[key] != other
    f = Filler()
    own = f.run(res.config, cs.metric, 86.0, 0, "t")
    changed = f.run(res.config, cs.metric, 80.0, 1, "t", changes={key: other})
    store = Store(tmp_path / "msda.db")
    f.write(store)
    rep = build_report(store.final_metrics_frame(), table="dcutmix-1")
    cell = rep.cell(row, col)
    assert (cell.run_ids, cell.left_out) == ([own], [changed]) and f"(keys that differ: {key})" in rep.caption


def test_cutmix_sourced_rows_use_the_cutmix_papers_settings():
    """Manifold Mixup α = 1 ("We have tried α = 0.5 and 1.0 ... and have chosen 1.0"), CutMix's cutmix_prob 0.5 on
    CIFAR (1.0 on ImageNet), and DCutMix Table 1's 15.09 is the CutMix paper's "Cutout + Manifold Mixup (α=1.0)"."""
    cols = ("CIFAR-100 PyramidNet-110", "CIFAR-100 PyramidNet-200", "CIFAR-10 PyramidNet-200")
    for col in cols:
        mm = resolve(_cell("dcutmix-1", "Manifold Mixup", col).plan).setting
        assert (mm["method"], mm["mixer.alpha"]) == ("manifold-mixup", 1.0), col
        assert mm["data.cutout"] == (16 if col == "CIFAR-100 PyramidNet-200" else 0), col
        cm = resolve(_cell("dcutmix-1", "CutMix", col).plan).setting
        assert (cm["method"], cm["mixer.prob"]) == ("cutmix", 0.5), col
    assert resolve(_cell("dcutmix-3", "Manifold Mixup", "Top-1 Err (%)").plan).setting["mixer.alpha"] == 1.0
    assert resolve(_cell("dcutmix-3", "CutMix", "Top-1 Err (%)").plan).setting["mixer.prob"] == 1.0
    assert resolve(_cell("dcutmix-1", "Cutout", "CIFAR-100 PyramidNet-200").plan).setting["data.cutout"] == 0


@pytest.mark.parametrize("table_id", ["1", "2", "3"])
def test_hmix_gmix_tables_train_without_label_smoothing_and_say_so(tmp_path, table_id):
    """The paper is silent; its timm-based code defaults to 0.1: the plans' choice (0) is in the caption, and runs
    with 0.1 are another setting."""
    cells = [(cs, res) for cs, res in _cells(table_id) if res is not None]
    assert cells and all(res.setting["mixer.smoothing"] == 0.0 for _, res in cells)
    cs, res = cells[0]
    f = Filler()
    own = f.run(res.config, cs.metric, 80.0, 0, "t")
    smoothed = f.run(res.config, cs.metric, 81.0, 1, "t", changes={"mixer.smoothing": 0.1})
    store = Store(tmp_path / "msda.db")
    f.write(store)
    rep = build_report(store.final_metrics_frame(), table=table_id)
    assert "No label smoothing" in rep.caption and "mixer.smoothing=0.1" in rep.caption
    assert "No label smoothing" in paper_caption(rep.caption)  # the LaTeX caption keeps the choice
    assert (_report_cell(rep, cs).run_ids, _report_cell(rep, cs).left_out) == ([own], [smoothed])


@pytest.mark.parametrize("table_id,row,col", [("mixupe-1a", "MixupE", "PreActResNet101"),
                                              ("mixupe-1b", "MixupE", "PreActResNet50"),
                                              ("mixupe-2a", "MixupE", "Wide-Resnet-28-10"),
                                              ("mixupe-7", "Mixup+additional loss (MixupE)", "Test Error"),
                                              ("mixupe-8", "Rotation U(-20, 20)", "MixupE (α = 1)")])
def test_mixupe_cells_filter_eta(tmp_path, table_id, row, col):
    cs = _cell(table_id, row, col)
    res = resolve(cs.plan)
    eta = res.setting["mixer.eta"]
    f = Filler()
    own = f.run(res.config, cs.metric, 80.0, 0, "t")
    other = f.run(res.config, cs.metric, 70.0, 1, "t", changes={"mixer.eta": 0.001 if eta != 0.001 else 0.0001})
    store = Store(tmp_path / "msda.db")
    f.write(store)
    rep = build_report(store.final_metrics_frame(), table=table_id)
    cell = rep.cell(row, col)
    assert (cell.run_ids, cell.left_out) == ([own], [other]) and "mixer.eta" in _differing(rep.caption)


def test_mixupe_cifar100_preactresnet50_cells_are_eta_1e4():
    """The paper's 20.23 % (Table 1b's cell and Table 7's MixupE row) is η = 1e-4; the other cells 1e-3."""
    assert resolve(_cell("mixupe-1b", "MixupE", "PreActResNet50").plan).setting["mixer.eta"] == 0.0001
    assert resolve(_cell("mixupe-7", "Mixup+additional loss (MixupE)", "Test Error").plan).setting["mixer.eta"] \
        == 0.0001
    assert resolve(_cell("mixupe-1b", "MixupE", "PreActResNet101").plan).setting["mixer.eta"] == 0.001


def test_shortened_runs_fill_no_full_length_cell_but_where_shows_them(tmp_path):
    cs = _cell("digits", "Mixup", "MLP")
    short = resolve(cs.plan, epochs=2)
    assert differing_keys(resolve(cs.plan).setting, short.setting) == ["epochs"]
    assert short.overrides() == ["--arch mlp", "--epochs 2"]
    frame, (rid,) = _store_of(tmp_path, [(short, cs.metric, 90.0, 0)])
    assert build_report(frame, table="digits").cell("Mixup", "MLP").left_out == [rid]
    assert build_report(frame, table="digits", where=["epochs=2"]).cell("Mixup", "MLP").run_ids == [rid]


def test_keys_that_cannot_change_a_result_are_not_a_setting():
    res = resolve(_cell("2", "HMix", "RN56").plan)
    flat = res.setting
    assert not {k for k in flat for n in NOT_SETTINGS if k == n or k.startswith(n + ".")}
    other = json.loads(json.dumps(res.config))
    other.update(seed=5, name="another-recipe", eval_batch_size=7, checkpoint_every=9, channels_last=True,
                 compile=True, threads=3)
    other["data"].update(root="/elsewhere", workers=0, download=True, pipeline="loader")
    other["method_defaults"] = {}
    assert setting_text(setting(other)) == res.text
    other["precision"] = "bf16"  # mixed precision is another computation
    assert differing_keys(res.setting, setting(other)) == ["precision"]


def test_a_key_an_older_run_lacks_reads_as_the_schema_default():
    res = resolve(_cell("2", "HMix", "RN56").plan)
    old = json.loads(json.dumps(res.config))
    del old["grad_clip"], old["precision"]
    assert setting_text(setting(old)) == res.text
    del old["mixer"]["r"]  # a hyperparameter has no schema default: another method
    assert differing_keys(res.setting, setting(old)) == ["mixer.r"]
