"""A run killed with SIGKILL at any moment resumes to exactly the uninterrupted result."""

import os
import signal
import sqlite3
import subprocess
import time

import torch

from conftest import assert_resume_matches_straight, interrupt_in_epoch, python_cmd, query

ARGS = ["train", "--recipe", "digits-mixup", "--method", "vanilla", "--epochs", "6",
        "--set", "data.options.image_size=16", "--set", "batch_size=64"]


def _env(results):
    return {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(results / "msda.db"), "OMP_NUM_THREADS": "1"}


def _final(db, run_id):
    ckpt = query(db, "SELECT checkpoint FROM run WHERE id=?", run_id)[0][0]
    metrics = dict(query(db, "SELECT name, value FROM metric WHERE run_id=? AND kind='eval'", run_id))
    return torch.load(ckpt, weights_only=True)["model"], metrics


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, msda):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    subprocess.run(python_cmd(*ARGS), env=_env(straight), check=True, capture_output=True, timeout=300)
    db_a = straight / "msda.db"
    (run_a,) = query(db_a, "SELECT id FROM run")[0]

    proc = subprocess.Popen(python_cmd(*ARGS), env=_env(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_b = killed / "msda.db"
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            rows = query(db_b, "SELECT epochs_done FROM run") if db_b.exists() else []
        except sqlite3.OperationalError:  # the database is still being created
            rows = []
        done = rows[0][0] if rows else 0
        if done >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_b, status, epochs_done) = query(db_b, "SELECT id, status, epochs_done FROM run")[0]
    assert status == "running" and 2 <= epochs_done < 6  # killed mid-run, row not updated

    # A dead run never shows as running.
    listing = subprocess.run(python_cmd("runs", "list", "--format", "csv"), env=_env(killed),
                             capture_output=True, text=True, check=True).stdout
    assert "interrupted" in listing and "running" not in listing

    subprocess.run(python_cmd("train", "--resume", run_b), env=_env(killed), check=True, capture_output=True,
                   timeout=300)
    assert query(db_b, "SELECT status, epochs_done FROM run") == [("finished", 6)]
    # Each epoch's metrics exist exactly once after the resume.
    assert query(db_b, "SELECT count(*) FROM metric WHERE name='train_loss'") == [(6,)]

    weights_a, metrics_a = _final(db_a, run_a)
    weights_b, metrics_b = _final(db_b, run_b)
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    assert metrics_a == metrics_b
    losses_a = query(db_a, "SELECT epoch, value FROM metric WHERE name='train_loss' ORDER BY epoch")
    losses_b = query(db_b, "SELECT epoch, value FROM metric WHERE name='train_loss' ORDER BY epoch")
    assert losses_a == losses_b


def test_resume_with_augmentation_and_loader_workers_matches_uninterrupted(tmp_path, msda, db_path, monkeypatch):
    """Workers are re-created each epoch from the epoch's seed, so augmentations replay exactly."""
    from test_data import write_cifar10

    write_cifar10(tmp_path / "c10", per_batch=24, n_test=20)
    args = ["train", "--recipe", "digits-vanilla", "--set", "dataset=cifar10", "--set", "data.options={}",
            "--set", "data.workers=2", "--set", "data.pipeline=loader", "--set", "batch_size=16", "--epochs", "3",
            "--data-dir", tmp_path / "c10"]
    assert msda(*args).code == 0

    interrupt_in_epoch(monkeypatch, msda, args)
    assert_resume_matches_straight(msda, db_path, epochs=3)


def test_resume_keeps_the_run_precision(msda, db_path, monkeypatch):
    import accelerate

    from msda_cli.config import read_recipe, validate
    from msda_cli.store import Store

    cfg = validate({**read_recipe("digits-vanilla"), "precision": "bf16"})
    run = Store(db_path).create_run(dataset="digits", arch="digits-cnn", method="vanilla", config=cfg.model_dump_json())
    Store(db_path).update_run(run.id, status="interrupted")
    seen = {}

    class Recorder:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(accelerate, "Accelerator", Recorder)
    msda("train", "--resume", run.id)
    assert seen["mixed_precision"] == "bf16"


def test_resuming_a_run_whose_method_gained_a_hyperparameter_is_refused(msda, db_path):
    """An older msda stored Manifold Mixup without `layers` (it then mixed after the stem and
    every stage): resuming with today's default would change the method mid-run."""
    import json

    from msda_cli.config import read_recipe, validate
    from msda_cli.store import Store

    raw = {**read_recipe("digits-manifold-mixup")}
    cfg = validate(raw)
    stored = json.loads(cfg.model_dump_json())
    stored["mixer"] = {"alpha": 2.0, "mask_mode": "batch", "smoothing": 0.0}  # no `layers`
    store = Store(db_path)
    run = store.create_run(dataset="digits", arch="digits-cnn", method="manifold-mixup", config=json.dumps(stored))
    store.update_run(run.id, status="interrupted")
    r = msda("train", "--resume", run.id)
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "older msda" in r.stderr and "layers" in r.stderr
    assert query(db_path, "SELECT status FROM run WHERE id=?", run.id) == [("interrupted",)]


def test_epochs_after_the_last_checkpoint_are_dropped_and_trained_again(tmp_path):
    """checkpoint_every=2 over 4 epochs: killed once epoch 3 is stored but not checkpointed, the
    resumed run drops epoch 3's rows, trains it again from the checkpoint of epoch 2, and ends
    with every row once and the uninterrupted weights."""
    from test_crash_train import assert_same_as_straight, outcome, run_msda

    args = ["train", "--recipe", "digits-mixup", "--epochs", "4", "--set", "data.options.image_size=16",
            "--set", "batch_size=128", "--set", "checkpoint_every=2"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    assert run_msda(straight, *args).returncode == 0
    assert run_msda(killed, *args, fault="train.epoch_recorded@3").returncode == -9
    db = killed / "msda.db"
    run_id, epochs_done = query(db, "SELECT id, epochs_done FROM run")[0]
    per_epoch = query(straight / "msda.db", "SELECT count(*) FROM metric WHERE epoch=2")
    assert epochs_done == 3 and per_epoch[0][0] > 0
    assert query(db, "SELECT count(*) FROM metric WHERE epoch=2") == per_epoch
    assert torch.load(killed / "runs" / run_id / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert run_msda(killed, "train", "--resume", run_id).returncode == 0
    assert_same_as_straight(outcome(killed), outcome(straight))
