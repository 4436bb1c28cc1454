"""`msda export`: runs read back from the trackers' own readers (TensorBoard's EventAccumulator, an
MLflow file store): per-epoch metrics at step = epoch, final metrics, the config as params; a second
export adds nothing; bad input and a missing library are one line."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import query, train_shared_runs

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    db = train_shared_runs(tmp_path_factory.mktemp("export-results"), ["--recipe", "digits-vanilla", *FAST],
                           ["--recipe", "digits-mixup", *FAST])
    return db, {m: i for i, m in query(db, "SELECT id, method FROM run")}


@pytest.fixture
def env(trained, monkeypatch, msda):
    db, runs = trained
    monkeypatch.setenv("MSDA_RESULTS", str(db.parent))
    monkeypatch.setenv("MSDA_DB", str(db))
    return db, runs


def stored(db, run_id):
    per_epoch = {(n, e + 1): v for n, e, v in query(
        db, "SELECT name, epoch, value FROM metric WHERE run_id=? AND epoch IS NOT NULL", run_id)}
    final = {f"{k}/{n}": v for k, n, v in query(
        db, "SELECT kind, name, value FROM metric WHERE run_id=? AND epoch IS NULL AND params='{}'", run_id)}
    (config,), = query(db, "SELECT config FROM run WHERE id=?", run_id)
    return per_epoch, final, json.loads(config)


def test_tensorboard_events_hold_every_metric_at_its_epoch(msda, env, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    db, runs = env
    r = msda("export", runs["vanilla"], runs["mixup"], "--to", "tensorboard", tmp_path / "tb")
    assert r.code == 0, r.stderr
    for run_id in runs.values():
        acc = EventAccumulator(str(tmp_path / "tb" / run_id))
        acc.Reload()
        per_epoch, final, config = stored(db, run_id)
        tags = acc.Tags()["scalars"]
        for (name, epoch), value in per_epoch.items():
            events = {e.step: e.value for e in acc.Scalars(f"train/{name}")}
            assert events[epoch] == pytest.approx(value, rel=1e-6)
        assert {e.step for e in acc.Scalars("train/test_top1")} == {1, 2}
        assert final and all(acc.Scalars(f"final/{k}")[0].value == pytest.approx(v, rel=1e-6) for k, v in final.items())
        assert len(tags) >= len({n for n, _ in per_epoch}) + len(final)
        text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert json.loads(text.strip("`\n")) == config
    before = sorted((tmp_path / "tb").rglob("*"))
    again = msda("export", runs["vanilla"], "--to", "tensorboard", tmp_path / "tb")
    assert again.code == 0 and "already exported" in again.stdout
    assert sorted((tmp_path / "tb").rglob("*")) == before


def test_mlflow_file_store_holds_metrics_params_and_the_run_id(msda, env, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file stores behind this switch
    db, runs = env
    uri = (tmp_path / "mlruns").as_uri()
    r = msda("export", runs["vanilla"], runs["mixup"], "--to", "mlflow", uri, "--experiment", "paper")
    assert r.code == 0, r.stderr
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("paper")
    found = {run.data.tags["msda.run_id"]: run for run in client.search_runs([experiment.experiment_id])}
    assert set(found) == set(runs.values())
    for method, run_id in runs.items():
        per_epoch, final, config = stored(db, run_id)
        run = found[run_id]
        assert run.info.status == "FINISHED"
        assert run.info.run_name.startswith({"vanilla": "Vanilla", "mixup": "Mixup (alpha 1)"}[method])
        for name in {n for n, _ in per_epoch}:
            history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"train/{name}")}
            assert history == pytest.approx({e: v for (n, e), v in per_epoch.items() if n == name}, rel=1e-6)
        assert all(run.data.metrics[f"final/{k}"] == pytest.approx(v, rel=1e-6) for k, v in final.items())
        assert run.data.params["optim.lr"] == json.dumps(config["optim"]["lr"])
        assert run.data.params["method"] == config["method"] and run.data.params["epochs"] == "2"
    again = msda("export", runs["mixup"], "--to", "mlflow", uri, "--experiment", "paper")
    assert again.code == 0 and "already exported" in again.stdout
    assert len(client.search_runs([experiment.experiment_id])) == 2


@pytest.mark.parametrize("args,message", [
    (["{a}", "--to", "wandb", "{tmp}/x"], "--to must be one of tensorboard, mlflow"),
    (["deadbeef", "--to", "tensorboard", "{tmp}/x"], "unknown run id"),
    (["{a}", "{a}", "--to", "tensorboard", "{tmp}/x"], "named twice"),
    (["{a}", "--to", "tensorboard", "{tmp}/file"], "is a file"),
])
def test_bad_export_is_one_line_and_writes_nothing(msda, env, tmp_path, args, message):
    _, runs = env
    (tmp_path / "file").write_text("")
    r = msda("export", *[a.format(a=runs["vanilla"], tmp=tmp_path) for a in args])
    assert r.code == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("to,modules,package", [
    ("tensorboard", ["torch.utils.tensorboard"], "tensorboard"),
    ("mlflow", ["mlflow", "mlflow.entities", "mlflow.exceptions", "mlflow.tracking"], "mlflow"),
])
def test_a_missing_tracker_library_is_one_line(msda, env, tmp_path, monkeypatch, to, modules, package):
    _, runs = env
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    r = msda("export", runs["vanilla"], "--to", to, tmp_path / "x")
    assert r.code == 2 and f"pip install {package}" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_mlflow_file_store_without_its_switch_is_one_line(msda, env, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    _, runs = env
    r = msda("export", runs["vanilla"], "--to", "mlflow", (tmp_path / "mlruns").as_uri())
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "MLFLOW_ALLOW_FILE_STORE=true" in r.stderr and "sqlite:///" in r.stderr
    assert not (tmp_path / "mlruns").exists()
