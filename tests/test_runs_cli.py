"""Finding, comparing, annotating and deleting runs: `msda runs list/compare/tag/note/rm`, `msda subsets list`."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from conftest import query
from msda_cli.store import Store

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "1"]


def _run(store, method, seed, top1, lr=0.05, status="finished", epochs_done=2):
    run = store.create_run(recipe=f"digits-{method}", dataset="digits", arch="digits-cnn", method=method, seed=seed,
                           name=f"digits-{method}/{method}/digits-cnn/s{seed}", epochs_done=epochs_done,
                           config=json.dumps({"method": method, "epochs": 4, "optim": {"lr": lr}, "seed": seed}))
    if top1 is not None:
        store.add_metrics(run.id, "eval", [("top1", top1), ("nll", 0.5)])
    if status == "finished":
        store.finish_run(run.id)
    return run.id


@pytest.fixture
def runs(db_path):
    store = Store(db_path)
    return store, {"v0": _run(store, "vanilla", 0, 90.0), "m0": _run(store, "mixup", 0, 93.0, lr=0.001),
                   "m1": _run(store, "mixup", 1, 92.0), "c0": _run(store, "cutmix", 0, 95.0)}


def _csv(text):
    return pd.read_csv(io.StringIO(text), dtype={"id": str, "source_run_id": str})  # ids such as 4e007779


def test_list_filters_sorts_and_limits(msda, runs):
    _, ids = runs
    r = msda("runs", "list", "--where", "method=mixup,cutmix", "--sort", "top1", "--limit", "2", "--format", "csv")
    assert r.code == 0, r.stderr
    frame = _csv(r.stdout)
    assert list(frame["id"]) == [ids["c0"], ids["m0"]] and list(frame["top1"]) == [95.0, 93.0]
    r = msda("runs", "list", "--where", "optim.lr=0.001", "--format", "csv")  # a config key, compared as a number
    assert list(_csv(r.stdout)["id"]) == [ids["m0"]]
    r = msda("runs", "list", "--where", "method!=mixup", "--sort", "method", "--format", "csv")
    assert list(_csv(r.stdout)["method"]) == ["cutmix", "vanilla"]
    r = msda("runs", "list", "--sort", "top1", "--reverse", "--format", "csv")
    assert list(_csv(r.stdout)["top1"]) == [90.0, 92.0, 93.0, 95.0]


@pytest.mark.parametrize("args, why", [
    (["--where", "nosuchkey=1"], "unknown key 'nosuchkey'"),
    (["--where", "method"], "--where expects key=value"),
    (["--sort", "colour"], "--sort: unknown key 'colour'"),
    (["--limit", "0"], "--limit"),
])
def test_list_bad_input_is_one_line(msda, runs, args, why):
    r = msda("runs", "list", *args)
    assert r.code == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_list_shows_the_time_left_of_a_running_run(msda, db_path):
    store = Store(db_path)
    lease = store.start_run(recipe="digits-mixup", method="mixup", epochs_done=2, config=json.dumps({"epochs": 4}))
    store.add_metrics(lease.run_id, "train", [("epoch_time_s", 30.0, 0), ("epoch_time_s", 40.0, 1)])
    try:
        r = msda("runs", "list", "--format", "csv")
    finally:
        lease.release()
    row = _csv(r.stdout).iloc[0]
    assert row["status"] == "running" and row["epochs"] == "2/4" and row["eta"] == "1m10s"  # 35 s x 2 epochs


def test_compare_shows_the_keys_that_differ_and_the_metrics(msda, runs):
    _, ids = runs
    r = msda("runs", "compare", ids["v0"], ids["m0"], "--format", "json")
    assert r.code == 0, r.stderr
    config, metrics = _two_json(r.stdout)  # two JSON documents: the config keys, then the metrics
    keys = {row["key"] for row in config}
    assert {"method", "optim.lr", "recipe", "name"} <= keys and "epochs" not in keys and "seed" not in keys
    top1 = next(row for row in metrics if row["metric"] == "top1")
    assert [v for k, v in top1.items() if k.startswith(ids["v0"])] == [90.0]
    assert [v for k, v in top1.items() if k.startswith(ids["m0"])] == [93.0]
    r = msda("runs", "compare", ids["v0"])
    assert r.code == 2 and "two or more" in r.stderr


def test_compare_shows_zero_epochs_done_as_zero(msda, db_path):
    store = Store(db_path)
    fresh = store.create_run(method="mixup", arch="digits-cnn", config=json.dumps({"epochs": 4}))
    store.update_run(fresh.id, status="failed")
    other = _run(store, "cutmix", 0, 95.0, epochs_done=4)
    r = msda("runs", "compare", fresh.id, other, "--format", "json")
    config = _two_json(r.stdout)[0]
    row = next(row for row in config if row["key"] == "epochs_done")
    assert sorted(v for k, v in row.items() if k != "key") == [0, 4]


def _two_json(text):
    decoder, pos, out = json.JSONDecoder(), 0, []
    text = text.strip()
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_tags_names_and_notes_are_stored_and_filtered_on(msda, runs, db_path):
    _, ids = runs
    assert msda("runs", "tag", ids["m0"], "--add", "best-lr", "--add", "sweep").code == 0
    assert msda("runs", "tag", ids["m1"], "--add", "sweep", "--name", "second try").code == 0
    assert msda("runs", "tag", ids["m0"], "--remove", "best-lr").code == 0
    assert query(db_path, f"SELECT tags FROM run WHERE id = '{ids['m0']}'") == [("sweep",)]
    assert msda("runs", "note", ids["m1"], "lr halved at epoch 3").code == 0
    r = msda("runs", "list", "--where", "tag=sweep", "--format", "csv")
    assert set(_csv(r.stdout)["id"]) == {ids["m0"], ids["m1"]} and "second try" in r.stdout
    r = msda("runs", "show", ids["m1"], "--format", "json")
    shown = json.loads(r.stdout)
    assert shown["note"] == "lr halved at epoch 3" and shown["tags"] == "sweep" and shown["name"] == "second try"
    r = msda("report", "--rows", "method", "--metric", "top1", "--where", "tag=sweep", "--format", "csv")
    assert r.code == 0, r.stderr
    assert "Mixup" in r.stdout and "Vanilla" not in r.stdout and "CutMix" not in r.stdout
    r = msda("runs", "tag", ids["m0"], "--add", "has space")
    assert r.code == 2 and "bad tag" in r.stderr
    r = msda("runs", "tag", ids["m0"])
    assert r.code == 2 and "--add" in r.stderr


def test_train_names_and_tags_its_runs(msda, db_path):
    r = msda("train", "--recipe", "digits-vanilla", *FAST, "--name", "smoke", "--tag", "ci", "--format", "csv")
    assert r.code == 0, r.stderr
    summary = _csv(r.stdout)
    assert list(summary["name"]) == ["smoke"] and list(summary["tags"]) == ["ci"]  # the end summary in csv
    assert query(db_path, "SELECT name, tags FROM run") == [("smoke", "ci")]
    r = msda("train", "--recipe", "digits-vanilla", *FAST, "--tag", "a,b")
    assert r.code == 2 and "bad tag" in r.stderr
    r = msda("train", "--recipe", "digits-vanilla", *FAST, "--format", "yaml")
    assert r.code == 2 and "unknown format" in r.stderr
    assert query(db_path, "SELECT count(*) FROM run") == [(1,)]


def test_rm_asks_and_dry_run_deletes_nothing(msda, runs, db_path, monkeypatch):
    _, ids = runs
    r = msda("runs", "rm", ids["v0"], "--dry-run")
    assert r.code == 0 and "would delete 1 run" in r.stdout and ids["v0"] in r.stdout
    assert query(db_path, "SELECT count(*) FROM run") == [(4,)]
    r = msda("runs", "rm", ids["v0"])  # stdin is not a terminal under pytest
    assert r.code == 2 and "--yes" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert query(db_path, "SELECT count(*) FROM run") == [(4,)]
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("typer.confirm", lambda *a, **k: False)
    r = msda("runs", "rm", ids["v0"])
    assert r.code == 1 and "nothing deleted" in r.stdout
    monkeypatch.setattr("typer.confirm", lambda *a, **k: True)
    r = msda("runs", "rm", ids["v0"])
    assert r.code == 0 and f"deleted run {ids['v0']}" in r.stdout
    r = msda("runs", "rm", ids["m0"], ids["m1"], "--yes")
    assert r.code == 0 and query(db_path, "SELECT count(*) FROM run") == [(1,)]


def test_subsets_list(msda, runs, db_path, tmp_path):
    store, ids = runs
    store.add_subset(id="ab12cd34", source_run_id=ids["c0"], measure="cv", ratio=0.1, seed=0, size=18,
                     indices_path=str(tmp_path / "idx.npy"))
    r = msda("subsets", "list", "--format", "csv")
    assert r.code == 0, r.stderr
    row = _csv(r.stdout).iloc[0]
    assert (row["id"], row["source_run_id"], row["measure"], row["size"]) == ("ab12cd34", ids["c0"], "cv", 18)


def test_read_only_commands_create_no_database(msda, isolated_results):
    for args in (["runs", "list"], ["subsets", "list"], ["report"]):
        r = msda(*args)
        assert r.code == 0, (args, r.stderr)
    assert not (isolated_results / "msda.db").exists()
    assert list(isolated_results.iterdir()) == []


def test_rm_where_deletes_the_matching_runs(msda, runs, db_path, isolated_results):
    _, ids = runs
    assert msda("runs", "tag", ids["m0"], "--add", "demo").code == 0
    assert msda("runs", "tag", ids["c0"], "--add", "demo").code == 0
    r = msda("runs", "rm", "--where", "tag=demo", "--dry-run")
    assert r.code == 0 and "would delete 2 run" in r.stdout
    r = msda("runs", "rm", "--where", "tag=demo", "--yes")
    assert r.code == 0, r.stderr
    assert sorted(i for (i,) in query(db_path, "SELECT id FROM run")) == sorted([ids["v0"], ids["m1"]])
    r = msda("runs", "rm", "--where", "tag=demo", "--yes")
    assert r.code == 0 and "nothing to delete" in r.stdout
    r = msda("runs", "rm", ids["v0"], "--where", "tag=demo")
    assert r.code == 2 and "not both" in r.stderr
    r = msda("runs", "rm", "--where", "tag=demo", "--yes", "--db", isolated_results / "none.db")
    assert r.code == 0 and not (isolated_results / "none.db").exists()  # a missing store is not created


def test_ctrl_c_says_which_run_stopped_and_how_to_resume_it(isolated_results, db_path):
    import signal
    import subprocess

    from conftest import python_cmd, wait_for_first_epoch

    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    trainer = subprocess.Popen(python_cmd("train", "--recipe", "digits-vanilla", "--method", "vanilla,mixup",
                                          "--epochs", "60", "--set", "data.options.image_size=16", "--cpu"),
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = wait_for_first_epoch(trainer, db_path)
    trainer.send_signal(signal.SIGINT)
    _, stderr = trainer.communicate(timeout=120)
    assert trainer.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"msda: interrupted: run {run_id} (vanilla, digits-cnn, seed 0) stopped after epoch")
    # the database named as this process found it (MSDA_DB here), so the command is exact anywhere
    assert last.endswith(f"of 60; continue it with: msda train --resume {run_id} --db {db_path}"), last
    assert "Traceback" not in stderr
    assert query(db_path, "SELECT id, status FROM run") == [(run_id, "interrupted")]  # mixup never started
