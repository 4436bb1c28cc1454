"""`msda report`: aggregation, rendering, published values and errors on a hand-made store."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import numpy as np
import pytest

from msda_cli.config import set_dotted
from msda_cli.errors import MsdaError
from msda_cli.metric_names import EVAL, FGSM, PGD, ROBUST, TOP1, TOP5, TRAIN, TRAIN_TIME
from msda_cli.report import TABLES, build_report, list_tables, render, render_rich
from msda_cli.report.paper import lookup_paper, parse_paper_value
from msda_cli.report.plan import resolve
from msda_cli.store import Store


def plan_config(table: str, row: str, col: str | None = None) -> dict:
    """The resolved config of a cell's plan (of the table's plan for a table of data-made headers)."""
    spec = TABLES[table]
    if col is None:
        return resolve(spec.plan).config
    rh = next(h for h in spec.rows if h.label == row)
    return resolve(spec.cell(rh, next(h for h in spec.cols if h.label == col)).plan).config


def _run(store, config, seed, metrics, *, status="finished", subset_id=None, **changes):
    """A run made from `config` (with `changes`: dotted keys as `mixer__r`) holding `metrics`."""
    cfg = json.loads(json.dumps(config))
    for key, value in changes.items():
        set_dotted(cfg, key.replace("__", "."), value)
    cfg["seed"] = seed
    run = store.create_run(name=f"{cfg['method']}-{cfg['arch']}-{seed}", recipe=cfg["name"], dataset=cfg["dataset"],
                           arch=cfg["arch"], method=cfg["method"], seed=seed, config=json.dumps(cfg),
                           subset_id=subset_id)
    for kind, items in metrics.items():
        store.add_metrics(run.id, kind, items)
    store.update_run(run.id, status=status)
    return run.id


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("report") / "msda.db")
    vanilla, mixup = plan_config("2", "Vanilla (no MSDA)", "RN56"), plan_config("2", "Mixup", "RN56")
    hmix = plan_config("2", "HMix", "RN56")
    ids = {}
    ids["A"] = _run(store, vanilla, 0, {EVAL: [(TOP1, 60.0), (TOP5, 90.0)]})
    time.sleep(0.002)
    store.add_metrics(ids["A"], EVAL, [(TOP1, 73.0)])  # re-evaluation: the latest value counts
    ids["B"] = _run(store, vanilla, 1, {EVAL: [(TOP1, 74.0)]})
    ids["C"] = _run(store, vanilla, 2, {EVAL: [(TOP1, 75.5)]})
    ids["D"] = _run(store, mixup, 0, {
        EVAL: [(TOP1, 74.0)],
        ROBUST: [(PGD, 30.0, None, {"attack": "pgd", "eps": 8, "mode": "gray-box"}),
                   (PGD, 50.0, None, {"attack": "pgd", "eps": 4, "mode": "gray-box"})]})
    ids["E"] = _run(store, mixup, 1, {
        EVAL: [(TOP1, 74.5)], ROBUST: [(FGSM, 20.0, None, {"attack": "fgsm", "eps": 8, "n_examples": 100})]})
    time.sleep(0.002)  # FGSM again on more examples: the same setting, the latest value counts
    store.add_metrics(ids["E"], ROBUST, [(FGSM, 25.0, None, {"attack": "fgsm", "eps": 8, "n_examples": 1000})])
    ids["F"] = _run(store, hmix, 0, {EVAL: [(TOP1, 76.0)]})
    ids["G"] = _run(store, hmix, 1, {EVAL: [(TOP1, 90.0)]}, mixer__r=0.75)  # another setting than the plan's
    ids["H"] = _run(store, plan_config("2", "CutMix", "WRN28-2"), 0, {EVAL: [(TOP1, 75.0)]})
    ids["I"] = _run(store, plan_config("2", "CutMix", "WRN28-2"), 1, {EVAL: [(TOP1, 99.0)]}, status="failed")
    ids["J"] = _run(store, plan_config("2", "GMix", "WRN28-2"), 0, {EVAL: [(TOP1, 98.0)]}, status="running")
    ids["K"] = _run(store, vanilla, 0, {EVAL: [(TOP1, 95.0)]}, dataset="cifar10", arch="preactresnet18")
    # MixupE's protocol (200 epochs, lr 0.1, ...): not a run of the unified-analysis Table 2
    ids["P"] = _run(store, plan_config("mixupe-1b", "ERM", "PreActResNet50"), 0, {EVAL: [(TOP1, 70.0)]})
    # Table 2's plan trained 200 epochs at lr 0.1: --where epochs=200 optim.lr=0.1 finds it
    ids["Q"] = _run(store, plan_config("2", "Vanilla (no MSDA)", "PreActRN50"), 0, {EVAL: [(TOP1, 71.0)]},
                    epochs=200, optim__lr=0.1)
    # training times for DCutMix Table 2's time ratio (CIFAR-100, PreActResNet18)
    for key, method, seed, top1, seconds in (("V0", "Vanilla", 0, 76.0, 100.0), ("V1", "Vanilla", 1, 77.0, 120.0),
                                             ("M0", "Mixup", 0, 78.0, 99.0), ("M1", "Mixup", 1, 79.0, 143.0)):
        metrics = {EVAL: [(TOP1, top1)], TRAIN: [(TRAIN_TIME, seconds)]}
        ids[key] = _run(store, plan_config("dcutmix-2", "PreActResNet18", method), seed, metrics)
    # data subsets (DCutMix Figure 5a): runs trained on subsets of a source run
    src = ids["V0"]
    for measure, ratio, errs in (("cv", 0.05, (40.0, 42.0)), ("random", 0.05, (46.0,)), ("cv", 0.1, (30.0,))):
        sub = store.add_subset(source_run_id=src, measure=measure, ratio=ratio, size=100, indices_path="x.npy")
        for seed, e in enumerate(errs):
            _run(store, plan_config("dcutmix-fig5a", ""), seed, {EVAL: [(TOP1, 100.0 - e)]}, subset_id=sub.id)
    return store, ids


@pytest.fixture(scope="module")
def frame(db):
    return db[0].final_metrics_frame()


# ----- aggregation -------------------------------------------------------------------
def test_cell_mean_std_match_numpy_and_skip_unfinished(frame, db):
    rep = build_report(frame, table="2")
    van = rep.cell("Vanilla (no MSDA)", "RN56")
    vals = np.array([73.0, 74.0, 75.5])  # A's re-evaluation (73.0) replaces its first 60.0
    assert van.n == 3
    assert van.mean == pytest.approx(vals.mean(), abs=1e-12)
    assert van.std == pytest.approx(vals.std(ddof=1), abs=1e-12)
    one = rep.cell("HMix", "RN56")  # r = 0.75 run G is not HMix of this table (r = 0.5)
    assert (one.n, one.mean, one.std) == (1, 76.0, None) and one.left_out == [db[1]["G"]]
    assert rep.cell("CutMix", "WRN28-2").n == 1  # the failed run I is left out
    assert rep.cell("GMix", "WRN28-2").mean is None  # the running run J is left out
    assert rep.cell("HMix", "RN56").best and not rep.cell("Mixup", "RN56").best


def test_include_unfinished_counts_failed_and_running(frame):
    rep = build_report(frame, table="2", include_unfinished=True)
    cut = rep.cell("CutMix", "WRN28-2")
    assert cut.n == 2 and cut.mean == pytest.approx(87.0)
    assert rep.cell("GMix", "WRN28-2").mean == pytest.approx(98.0)


def test_error_metric_and_lower_is_better(frame):
    rep = build_report(frame, metric="error", where=["dataset=cifar100", "arch=resnet56"])
    assert rep.lower_is_better
    assert rep.cell("Vanilla", "RN56").mean == pytest.approx(100 - np.mean([73.0, 74.0, 75.5]))
    assert rep.cell("HMix", "RN56").best  # lowest error (83 % accuracy)
    assert not rep.cell("Vanilla", "RN56").best  # highest error: best if the direction were wrong


def test_where_compares_numbers_and_run_columns(frame):
    rep = build_report(frame, where=["mixer.r=0.50"])
    assert rep.rows == [("HMix",)] and rep.cell("HMix", "RN56").mean == 76.0
    rep = build_report(frame, where=["dataset=cifar10"])
    assert rep.rows == [("Vanilla",)] and rep.columns == ["PreActRN18"]
    rep = build_report(frame, where=["method!=vanilla", "dataset=cifar100", "subset_id=null"])
    assert ("Vanilla",) not in rep.rows and ("Mixup",) in rep.rows


def test_other_settings_stay_out_named_unless_where_replaces_them(frame, db):
    _, ids = db
    rep = build_report(frame, table="2")
    cell = rep.cell("Vanilla (no MSDA)", "PreActRN50")
    assert cell.mean is None and sorted(cell.left_out) == sorted([ids["P"], ids["Q"]])
    assert ("3 run(s) of a cell's data set, architecture and method but another setting are left out (keys that "
            "differ: epochs, mixer.r, optim.lr, schedule.milestones); --runs lists them per cell."
            ) in rep.caption
    listed = build_report(frame, table="2", show_runs=True)
    assert f"[left out, another setting: {ids['G']}]" in render(listed, "markdown")
    row = next(r for r in csv.DictReader(io.StringIO(render(listed, "csv"))) if r["Method"] == "HMix"
               and r["column"] == "RN56")
    assert (row["run_ids"], row["left_out"]) == (ids["F"], ids["G"])
    rep = build_report(frame, table="mixupe-1b")
    assert rep.cell("ERM", "PreActResNet50").mean == pytest.approx(30.0)  # error = 100 - top1
    assert rep.cell("ERM", "PreActResNet50").left_out == [ids["Q"]]  # Table 2's protocol, 200 epochs at lr 0.1
    rep = build_report(frame, table="2", where=["epochs=200", "optim.lr=0.1"])
    assert rep.cell("Vanilla (no MSDA)", "PreActRN50").mean == 71.0
    assert rep.cell("Vanilla (no MSDA)", "RN56").mean is None
    assert "Filter: epochs=200, optim.lr=0.1 (in place of the plans' values)." in rep.caption


def test_time_ratio_divides_by_vanilla_of_the_row(frame):
    rep = build_report(frame, table="dcutmix-2", metric="time_ratio")
    ratios = np.array([99.0, 143.0]) / 110.0
    cell = rep.cell("PreActResNet18", "Mixup")
    assert cell.mean == pytest.approx(ratios.mean()) and cell.std == pytest.approx(ratios.std(ddof=1))
    assert rep.cell("PreActResNet18", "Vanilla").mean == pytest.approx(1.0)
    assert rep.cell("PreActResNet18", "Mixup").paper == pytest.approx(1.04)


def test_robust_params_filter_and_several_settings_note(frame):
    rep = build_report(frame, metric=PGD, where=["params.eps=8"])
    assert rep.cell("Mixup", "RN56").mean == 30.0
    rep = build_report(frame, metric=PGD)
    assert rep.cell("Mixup", "RN56").mean == 40.0
    assert "several settings" in rep.caption


def test_rerun_on_more_examples_replaces_the_earlier_value(frame):
    rep = build_report(frame, metric=FGSM)
    cell = rep.cell("Mixup", "RN56")
    assert (cell.mean, cell.n) == (25.0, 1) and "several settings" not in rep.caption


def test_subset_table_rows_are_measures_cols_ratios(db):
    store, _ = db
    rep = build_report(store, table="dcutmix-fig5a")
    assert rep.rows == [("CV",), ("Random",)] and rep.columns == ["t = 0.05", "t = 0.1"]
    assert rep.cell("CV", "t = 0.05").mean == pytest.approx(41.0)
    assert rep.cell("Random", "t = 0.05").mean == pytest.approx(46.0)
    assert rep.cell("CV", "t = 0.05").best and rep.cell("Random", "t = 0.1").mean is None


# ----- rendering -----------------------------------------------------------------------
ADHOC_MD = """\
**Top-1 accuracy (%) by method and architecture**

| Method   |                   RN56 |   WRN28-2 |
|:---------|-----------------------:|----------:|
| Vanilla  |     74.17 ± 1.26 (n=3) |         – |
| Mixup    |     74.25 ± 0.35 (n=2) |         – |
| CutMix   |                      – |     75.00 |
| HMix     | **83.00 ± 9.90 (n=2)** |         – |

Cells: mean ± sample standard deviation over seeds (ddof = 1); one seed shows the value alone; \
n = 1–3 seeds per cell. Bold: best per column (higher is better). 2 unfinished run(s) \
(running/failed/interrupted) left out; --include-unfinished counts them. 1 cell(s) pool runs of different \
settings (keys that differ): HMix / RN56 (mixer.r); narrow with --where KEY=VALUE. Filter: dataset=cifar100, \
arch={resnet56, wrn28-2}.
"""


def _squeezed(text: str) -> str:
    """Markdown with the padding of its pipe tables collapsed to one space."""
    return re.sub(r" {2,}", " ", text)


def _adhoc(frame, **kw):
    return build_report(frame, rows="method", cols="arch", where=["dataset=cifar100", "arch=resnet56,wrn28-2"], **kw)


def test_markdown_exact(frame):
    assert render(_adhoc(frame), "markdown") == ADHOC_MD


def test_latex_booktabs_bold_and_missing(frame):
    tex = render(_adhoc(frame), "latex")
    lines = tex.splitlines()
    assert lines[:2] == [r"\begin{table}[t]", r"\centering"]
    assert r"\begin{tabular}{lrr}" in lines and r"\toprule" in lines and r"\midrule" in lines
    assert r"\bottomrule" in lines and lines[-1] == r"\end{table}"
    assert r"HMix & \textbf{83.00 $\pm$ 9.90 (n=2)} & -- \\" in lines
    assert r"Method & RN56 & WRN28-2 \\" in lines
    assert r"CutMix & -- & 75.00 \\" in lines


def test_csv_and_json_carry_fields(frame):
    rep = _adhoc(frame)
    rows = list(csv.DictReader(io.StringIO(render(rep, "csv"))))
    assert len(rows) == 8 and list(rows[0])[:6] == ["Method", "column", "mean", "std", "n", "paper"]
    van = next(r for r in rows if r["Method"] == "Vanilla" and r["column"] == "RN56")
    assert float(van["mean"]) == pytest.approx(np.mean([73.0, 74.0, 75.5]))
    assert float(van["std"]) == pytest.approx(np.std([73.0, 74.0, 75.5], ddof=1))
    assert van["n"] == "3" and van["paper"] == ""
    miss = next(r for r in rows if r["Method"] == "Vanilla" and r["column"] == "WRN28-2")
    assert (miss["mean"], miss["n"]) == ("", "0")
    doc = json.loads(render(rep, "json"))
    assert doc["columns"] == ["RN56", "WRN28-2"] and doc["lower_is_better"] is False
    hm = next(c for c in doc["cells"] if c["Method"] == "HMix" and c["column"] == "RN56")
    assert hm["mean"] == 83.0 and hm["n"] == 2 and hm["best"] is True
    assert hm["std"] == pytest.approx(np.std([76.0, 90.0], ddof=1))


def test_rich_bold_best_and_runs(frame, db):
    _, ids = db
    rep = _adhoc(frame, show_runs=True)
    title, table, caption = render_rich(rep).renderables
    assert title.plain == rep.title and table.row_count == 4 and caption.plain == rep.caption
    rn56 = list(table.columns[1].cells)
    assert [str(t.style) for t in rn56] == ["", "", "", "bold"]
    assert ids["F"] in str(rn56[3]) and ids["G"] in str(rn56[3])
    text = render(rep, "rich")
    assert "83.00 ± 9.90" in text and "–" in text


def test_paper_values_shown_with_difference(frame):
    rep = build_report(frame, table="2", paper=True)
    van = rep.cell("Vanilla (no MSDA)", "RN56")
    assert van.paper == 73.23 and van.diff == pytest.approx(np.mean([73.0, 74.0, 75.5]) - 73.23)
    md = _squeezed(render(rep, "markdown"))
    assert "| Vanilla (no MSDA) | 74.17 ± 1.26 (n=3) (paper 73.23; +0.94) | – (paper 73.50) |" in md
    assert "| PuzzleMix | – | – (paper 76.51) |" in md  # RN56 has no published PuzzleMix value
    assert "published value" in rep.caption
    rows = list(csv.DictReader(io.StringIO(render(rep, "csv"))))
    assert next(r for r in rows if r["Method"] == "GMix" and r["column"] == "PreActRN50")["paper"] == "81.45"
    plain = render(build_report(frame, table="2"), "markdown")
    assert "(paper " not in plain and "published value" not in plain


@pytest.mark.parametrize("paper,table,path,col,expected", [
    ("hmix-gmix", "2", ("HMix",), "PreActRN34", (81.07, None)),
    ("hmix-gmix", "3", ("HMix",), "Top-1 accuracy", (78.38, None)),
    ("hmix-gmix", "1", ("Scenario 2: Small crop",), "Δ (CutMix - Mixup)", (-0.7, None)),
    ("mixupe", "1b", ("MixupE",), "Wide-Resnet-28-10", (17.12, 0.111)),
    ("mixupe", "2b", ("PreActResNet34", "MixupE"), "top-5", (83.77, 0.35)),
    ("mixupe", "8", ("Zoom Out (140% rescale)",), "Ours (α = 1)", (36.58, None)),
    ("dcutmix", "1", ("DCutMix",), "CIFAR-10 PyramidNet-200", (2.42, None)),
    ("dcutmix", "3b", ("Saliency-DCutMix", "7"), "Top-1 Err (%)", (21.44, None)),
    ("dcutmix", "5", ("+ Saliency-DCutMix (K = 3, α = 1/3)",), "White-box FGSM (L∞, ε = 8)", (41.37, None)),
    ("dcutmix", "2:time_ratio", ("WRN16-8",), "StyleCutMix", (74.98, None)),
])
def test_typed_in_paper_values(paper, table, path, col, expected):
    assert lookup_paper(paper, table, path, col) == expected


def test_paper_value_parsing():
    assert parse_paper_value("4.71 ± 0.062") == (4.71, 0.062)
    assert parse_paper_value(None) == (None, None) and parse_paper_value(1) == (1.0, None)


# ----- errors and empty tables ------------------------------------------------------------
@pytest.mark.parametrize("kwargs,needle", [
    ({"table": "9"}, "unknown table '9'; valid ids: 1, 2, 3, mixupe-1a"),
    ({"metric": "top7"}, "unknown metric 'top7'"),
    ({"where": ["mixer.zeta=1"]}, "unknown key 'mixer.zeta'"),
    ({"table": "2", "where": ["mixer.zeta=1"]}, "unknown key 'mixer.zeta'"),
    ({"where": ["mixer.r"]}, "--where expects key=value"),
    ({"where": ["=3"]}, "--where expects key=value"),
    ({"rows": "colour"}, "--rows: unknown key 'colour'"),
    ({"table": "2", "metric": "time_ratio"}, "table 2 has no metric 'time_ratio'"),
    ({"rows": "params.eps"}, "not metric settings"),
])
def test_bad_input_raises_msda_error(frame, kwargs, needle):
    with pytest.raises(MsdaError) as e:
        build_report(frame, **kwargs)
    assert needle in str(e.value)


def test_unknown_metric_lists_present_metrics(frame):
    with pytest.raises(MsdaError, match="pgd, top1, top5, train_time_s"):
        build_report(frame, metric="top7")


def test_render_unknown_format(frame):
    with pytest.raises(MsdaError, match="unknown report format 'html'"):
        render(_adhoc(frame), "html")


def test_no_matching_run_renders_empty_table_with_hint(frame):
    rep = build_report(frame, table="mixupe-1a")
    assert rep.empty and all(c.mean is None for row in rep.cells for c in row)
    assert ("No finished run matches this table yet; `msda reproduce --table mixupe-1a --seeds 0,1,2` trains every "
            "cell (`--dry-run` shows each cell's recipe and overrides).") in rep.caption
    md = _squeezed(render(rep, "markdown"))
    assert "| ERM | – | – | – |" in md
    rep = build_report(frame, where=["dataset=svhn"])
    assert rep.rows == [] and "No finished run matches" in render(rep, "markdown")
    assert render(rep, "latex").count(r"\toprule") == 1


def test_list_tables_ids():
    ids = [t.id for t in list_tables()]
    assert ids[:3] == ["1", "2", "3"] and ids[-1] == "digits"
    assert {"mixupe-1a", "mixupe-5", "mixupe-6", "mixupe-8", "dcutmix-1", "dcutmix-5", "dcutmix-fig5a"} <= set(ids)
    assert len(ids) == len(set(ids))
    assert all(t.caption and t.paper for t in list_tables())
