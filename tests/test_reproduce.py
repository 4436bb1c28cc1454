"""`msda reproduce`: the digits table end to end (plan, parallel training, a killed run resumed, a failed
run retried only when asked, follow-up attacks, nothing the second time, the table as `msda report`
prints it), and bad input refused before anything is written."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from conftest import query
from msda_cli.metric_names import FGSM, ROBUST

# 2 epochs on 16 px digits in batches of 128: another setting than the table's, shown with --where
SMOKE = ["--seeds", "0", "--epochs", "2", "--set", "data.options.image_size=16", "--set", "batch_size=128"]
SMOKE_WHERE = ["--where", "epochs=2", "--where", "data.options.image_size=16", "--where", "batch_size=128"]


def _runs(db):
    return dict(query(db, "SELECT id, status FROM run")) if db.exists() else {}


def _table(stdout: str) -> str:
    """The table `msda reproduce` prints at the end (after the plan and the launcher's summary)."""
    text = stdout[stdout.rindex("Digits check: Methods on two small architectures\n"):]
    return text[:text.index("(as `msda report")]


def test_reproduce_the_digits_table_end_to_end(msda, db_path, isolated_results, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    r = msda("reproduce", "--table", "digits", *SMOKE, "--dry-run")
    assert r.code == 0, r.stderr
    assert r.stdout.count("to run") == 6 and "--dry-run: nothing was run." in r.stdout
    # the FGSM attack of each of the 3 CNN runs counts before those runs exist
    assert "6 to train, 0 to resume, 3 follow-up measurement(s) to make" in r.stdout
    assert "train, then robust --attack fgsm --eps 8" in r.stdout
    assert not db_path.exists() and not (isolated_results / "runs").exists()  # --dry-run writes nothing
    r = msda("reproduce", "--table", "digits", *SMOKE, "--dry-run", "--format", "json")  # the plan is the output
    assert [row["status"] for row in json.loads(r.stdout)] == ["to run"] * 6 and "6 to train" in r.stderr

    # a run killed by SIGKILL after its first epoch, and one whose training fails
    monkeypatch.setenv("MSDA_FAULT", "train.epoch_recorded:kill@1")
    r = msda("reproduce", "--table", "digits", *SMOKE, "--rows", "vanilla", "--arch", "digits-cnn")
    assert r.code == 1, r.stderr
    ((killed, status),) = _runs(db_path).items()
    assert status == "interrupted" and query(db_path, "SELECT epochs_done FROM run") == [(1,)]
    monkeypatch.setenv("MSDA_FAULT", "train.epoch_recorded:error@1")
    r = msda("reproduce", "--table", "digits", *SMOKE, "--rows", "Mixup", "--arch", "mlp")
    assert r.code == 1
    (failed,) = set(_runs(db_path)) - {killed}
    assert _runs(db_path)[failed] == "failed"
    monkeypatch.delenv("MSDA_FAULT")

    # every other cell trained with --jobs 2, the killed run resumed under its id, the failed one left
    r = msda("reproduce", "--table", "digits", *SMOKE, "--jobs", "2")
    assert r.code == 1, r.stderr  # the failed run is not done
    assert "nothing (--retry-failed resumes it)" in r.stdout and "resume, then robust" in r.stdout
    runs = _runs(db_path)
    assert len(runs) == 6 and runs[killed] == "finished" and runs[failed] == "failed"
    assert sum(s == "finished" for s in runs.values()) == 5
    assert query(db_path, "SELECT epochs_done FROM run WHERE id=?", killed) == [(2,)]
    r = msda("reproduce", "--table", "digits", *SMOKE, "--jobs", "2", "--retry-failed")
    assert r.code == 0, r.stderr
    runs = _runs(db_path)
    assert len(runs) == 6 and set(runs.values()) == {"finished"}
    # the follow-up attack of the CNN column, once per CNN run
    attacked = query(db_path, "SELECT r.arch, count(*) FROM metric m JOIN run r ON r.id = m.run_id "
                              "WHERE m.kind=? AND m.name=? GROUP BY r.arch", ROBUST, FGSM)
    assert attacked == [("digits-cnn", 3)]

    # the second time: nothing trained, nothing measured
    metrics = query(db_path, "SELECT count(*) FROM metric")
    r = msda("reproduce", "--table", "digits", *SMOKE, "--jobs", "2")
    assert r.code == 0, r.stderr
    assert "6 planned runs (6 done), 0 to train, 0 to resume, 0 follow-up" in r.stdout
    assert _runs(db_path) == runs and query(db_path, "SELECT count(*) FROM metric") == metrics
    final = _table(r.stdout)
    # in another format stdout is the table alone, as `msda report` gives it; the plan and the rest go to stderr
    r = msda("reproduce", "--table", "digits", *SMOKE, "--jobs", "2", "--format", "csv")
    assert r.code == 0 and "6 planned runs (6 done)" in r.stderr and "Plan: " in r.stderr
    assert r.stdout == msda("report", "--table", "digits", "--paper", *SMOKE_WHERE, "--format", "csv").stdout
    assert not [line for line in final.splitlines() if line.startswith("│") and "–" in line]  # every cell filled

    report = msda("report", "--table", "digits", "--paper", *SMOKE_WHERE)
    assert report.code == 0 and report.stdout == final
    # the full-length table holds none of these runs: they are another setting, named in the caption
    full = msda("report", "--table", "digits", "--format", "csv")
    assert "6 run(s) of a cell's data set, architecture and method but another setting are left out" in \
        msda("report", "--table", "digits").stdout
    assert [row["mean"] for row in csv.DictReader(io.StringIO(full.stdout))] == [""] * 9


def test_a_grid_run_names_the_selection_in_its_report_hint(msda, db_path, isolated_results, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    held_out = [*SMOKE, "--set", "data.val_fraction=0.2", "--rows", "Mixup", "--arch", "mlp"]
    r = msda("reproduce", "--table", "digits", *held_out, "--grid", "mixer.alpha=0.5,1")
    assert r.code == 0, r.stderr
    where = [*SMOKE_WHERE, "--where", "data.val_fraction=0.2"]
    hint = ["--table", "digits", "--paper", *where, "--select-by", "val_top1", "--over", "mixer.alpha"]
    assert f"(as `msda report {' '.join(hint)}` prints it)" in " ".join(r.stdout.split())
    assert msda("report", *hint).stdout == _table(r.stdout)  # the hint prints the table shown


def test_a_grid_leaves_the_cells_whose_method_lacks_its_key(msda, db_path, isolated_results):
    from msda_cli.reproduce import Request, planned_cells

    cells, _ = planned_cells(Request(table="mixupe-4", rows=("Iris",), grid=("mixer.alpha=1,2",)))
    alphas = {cs.col.label: {res.config["mixer"].get("alpha") for c, res in cells if c.col is cs.col}
              for cs, _ in cells}
    assert alphas["Mixup"] == {1.0, 2.0} and alphas["ERM"] == {None}
    r = msda("reproduce", "--table", "mixupe-4", "--rows", "Iris", "--grid", "mixer.alpha=1,2", "--dry-run")
    assert r.code == 0, r.stderr
    assert "Iris / ERM: left at its planned setting (its method takes no mixer.alpha)" in r.stdout
    assert not db_path.exists()


def _one_line_exit_2(r):
    lines = r.stderr.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and lines[0].startswith("msda: error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["--table", "99"], "unknown table '99'; valid ids: 1, 2, 3"),
    (["--table", "digits", "--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--table", "digits", "--epochs", "0"], "--epochs must be at least 1"),
    (["--table", "digits", "--seeds", "0,x"], "--seeds expects comma-separated integers"),
    (["--table", "digits", "--rows", "supermix"], "--rows: table digits has no row 'supermix'"),
    (["--table", "digits", "--arch", "resnet50"], "--arch: no trainable cell of table digits trains 'resnet50'"),
    (["--table", "digits", "--set", "mixer.zeta=1"], "zeta"),
    (["--table", "digits", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
    (["--table", "2", "--seeds", "0", "--rows", "vanilla", "--arch", "resnet56"],
     "table 2 needs data that is not here: cifar100: data not found"),
    (["--table", "2", "--seeds", "0", "--rows", "vanilla", "--arch", "resnet56", "--dry-run"],
     "table 2 needs data that is not here: cifar100"),
    (["--table", "dcutmix-5", "--seeds", "0", "--rows", "vanilla", "--data-dir", "."], "imagenet"),
    # a grid chosen by validation needs a validation split; one no cell takes; one tuned on the test set
    (["--table", "2", "--rows", "Mixup", "--arch", "resnet56", "--grid", "mixer.alpha=0.5,1"],
     "holds no validation split out to choose its setting by val_top1: add --set data.val_fraction=0.1"),
    (["--table", "mixupe-4", "--rows", "Iris", "--grid", "mixer.nokey=1,2"], "--grid mixer.nokey: no selected cell"),
    (["--table", "mixupe-4", "--rows", "Iris", "--grid", "mixer.alpha=1,2", "--select-by", "top1"],
     "--select-by top1 would tune table mixupe-4 on its test set"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(msda, db_path, isolated_results, args, message):
    assert message in _one_line_exit_2(msda("reproduce", *args))
    assert not db_path.exists() and not (isolated_results / "runs").exists()


def test_a_gpu_the_machine_lacks_is_refused(msda, db_path):
    line = _one_line_exit_2(msda("reproduce", "--table", "digits", "--gpus", "7"))
    expected = "there is no GPU 7" if torch.cuda.device_count() else "--gpus needs GPUs, but no GPU is visible"
    assert expected in line and not db_path.exists()


def test_a_store_that_cannot_be_opened_is_refused(msda, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    before = bad.read_bytes()
    _one_line_exit_2(msda("reproduce", "--table", "digits", "--db", str(bad)))
    assert bad.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["bad.db", "results"]


def test_the_plan_of_a_paper_table_names_recipes_overrides_and_what_it_cannot_train(msda, tmp_path, db_path):
    data = tmp_path / "data"  # an empty data folder: the dry run shows the plan, then names what is missing
    data.mkdir()
    r = msda("reproduce", "--table", "dcutmix-5", "--seeds", "0,1", "--data-dir", str(data), "--dry-run")
    assert r.code == 2 and "imagenet" in r.stderr
    assert "imagenet-dcutmix" in r.stdout and "--attack fgsm" in r.stdout and "--source" in r.stdout
    assert "imagenet-a/ in --data-dir" in r.stderr
    # the black-box column's substitute ResNet-152 is planned beside the 4 rows, one per seed
    assert "--arch resnet152" in r.stdout and "substitute model of Black-box" in r.stdout
    assert "resnet152>" in r.stdout  # the black-box --source: <the run of imagenet-vanilla --arch resnet152>
    assert "10 planned runs (0 done), 10 to train" in r.stdout and not db_path.exists()
    r = msda("reproduce", "--table", "dcutmix-2", "--seeds", "0", "--data-dir", str(data), "--dry-run")
    assert "cannot train" in r.stdout and "PuzzleMix" in r.stdout
    r = msda("reproduce", "--table", "3", "--seeds", "0", "--rows", "mixup", "--data-dir", str(data), "--dry-run")
    assert "imagenet-mixup" in r.stdout and "--set mixer.alpha" not in r.stdout  # α = 0.8: the recipe's own
    r = msda("reproduce", "--table", "dcutmix-3", "--seeds", "0", "--rows", "mixup", "--data-dir", str(data),
             "--dry-run")
    assert "--set mixer.alpha=1" in r.stdout  # the CutMix paper's Mixup


def test_a_table_of_runs_on_subsets_subsamples_its_source_then_trains_on_them(msda, db_path, monkeypatch):
    """The subset table's plan (DCutMix Figure 5a) on digits: a source run, `msda subsample`, runs on each subset."""
    from msda_cli.report import TABLES
    from msda_cli.report.spec import TOP1_ERR, FollowUp, Plan, TableSpec

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fig5a = TABLES["dcutmix-fig5a"]
    subsets = FollowUp("subsample", (("measure", "cv,random"), ("ratio", "0.2")))
    spec = TableSpec(id="digits-subsets", source=TABLES["digits"].source, paper_table="", number="",
                     caption="Subsets. Error", plan=Plan(recipe="digits-dcutmix", subsets=subsets), rows=(), cols=(),
                     dynamic_rows=fig5a.dynamic_rows, dynamic_cols=fig5a.dynamic_cols, metric=TOP1_ERR)
    monkeypatch.setitem(TABLES, spec.id, spec)
    args = ["reproduce", "--table", spec.id, "--seeds", "0", "--epochs", "1", "--set", "data.options.image_size=16"]
    r = msda(*args, "--dry-run")
    assert "3 planned runs (0 done), 3 to train, 0 to resume, 1 follow-up measurement(s)" in r.stdout
    assert "train, then subsample --measure cv,random --ratio 0.2" in r.stdout
    r = msda(*args)
    assert r.code == 0, r.stderr
    assert "subsample --measure cv,random --ratio 0.2 on run" in r.stderr
    runs = query(db_path, "SELECT r.id, s.measure FROM run r LEFT JOIN subset s ON s.id = r.subset_id "
                          "ORDER BY s.measure")
    assert [m for _, m in runs] == [None, "cv", "random"] and query(db_path, "SELECT count(*) FROM subset") == [(2,)]
    assert "CV (high)" in r.stdout and "Random" in r.stdout
    r = msda(*args)
    assert r.code == 0 and "3 planned runs (3 done), 0 to train" in r.stdout
    assert query(db_path, "SELECT count(*) FROM run") == [(3,)]
    assert query(db_path, "SELECT count(*) FROM subset") == [(2,)]


def test_a_black_box_follow_up_crafts_on_the_planned_substitute_of_the_same_seed():
    """DCutMix Table 5: "we set a substitute model (i.e. ResNet152)": the plan trains it per seed, the attack
    uses it."""
    import tempfile

    from msda_cli.errors import MsdaError
    from msda_cli.report.spec import RunOf
    from msda_cli.report.tables.dcutmix import SUBSTITUTE
    from msda_cli.reproduce import Request, _run_of, make_plan
    from msda_cli.store import Store

    req = Request(table="dcutmix-5", seeds=(0, 1))
    with tempfile.TemporaryDirectory() as d:
        plan = make_plan(req, Store(f"{d}/msda.db"))
    subs = [pr for pr in plan.runs if pr.res.arch == "resnet152"]
    assert sorted(pr.seed for pr in subs) == [0, 1] and all(pr.res.method == "vanilla" for pr in subs)
    target = next(pr for pr in plan.runs if pr.res.arch == "resnet50" and pr.seed == 1)
    with pytest.raises(MsdaError, match="not trained yet"):
        _run_of(plan, target, RunOf(SUBSTITUTE), req)
    for pr in subs:
        pr.run = {"id": f"sub{pr.seed}", "status": "finished"}
    assert _run_of(plan, target, RunOf(SUBSTITUTE), req) == "sub1"


def test_the_data_check_resolves_one_config_per_data_set(db_path, monkeypatch):
    """Planning a big table stays fast: the runs to launch are grouped by data set before any config is resolved."""
    import msda_cli.engine.launch as launch
    from msda_cli.reproduce import Request, make_plan, missing_data
    from msda_cli.store import Store

    req = Request(table="digits", seeds=(0, 1, 2), epochs=2)
    plan = make_plan(req, Store(db_path))
    assert len(plan.to_launch()) == 18
    resolved, real = [], launch.resolve_configs
    monkeypatch.setattr(launch, "resolve_configs", lambda r: resolved.append(r) or real(r))
    assert missing_data(plan, req) == [] and len(resolved) == 1  # every digits run reads the same data
