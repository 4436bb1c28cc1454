"""checkpoint_keep: last (checkpoint.pt only), both (and best.pt, the epoch of highest test top-1 so far),
best (best.pt only once the run finishes; eval then measures that epoch's model)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import query
from msda_cli.metric_names import TEST_TOP1, TOP1, TRAIN

FAST = ["--recipe", "digits-vanilla", "--set", "data.options.image_size=16", "--set", "batch_size=128",
        "--epochs", "6"]
# The per-epoch test top-1 the loop sees (scripted, so the test does not hang on a training trajectory):
# it peaks in epoch 2 and ties it in epoch 4, so the best epoch is neither the last nor the later tie.
SCRIPTED_TOP1 = [40.0, 70.0, 90.0, 60.0, 90.0, 80.0]


@pytest.fixture(autouse=True)
def scripted_top1(monkeypatch):
    import msda_cli.engine.train as train

    real, calls = train.evaluate, []

    def evaluate(*args, **kwargs):
        metrics = dict(real(*args, **kwargs))
        metrics[TOP1] = SCRIPTED_TOP1[min(len(calls), len(SCRIPTED_TOP1) - 1)]
        calls.append(metrics[TOP1])
        return metrics

    monkeypatch.setattr(train, "evaluate", evaluate)


def trained(msda, db_path, keep):
    r = msda("train", *FAST, "--set", f"checkpoint_keep={keep}")
    assert r.code == 0, r.stderr
    (run_id,), = query(db_path, "SELECT id FROM run")
    folder = db_path.parent / "runs" / run_id
    top1 = [v for (v,) in query(db_path, "SELECT value FROM metric WHERE run_id=? AND kind=? AND name=? "
                                         "ORDER BY epoch", run_id, TRAIN, TEST_TOP1)]
    return run_id, folder, top1


def test_last_keeps_only_the_last_epoch(msda, db_path):
    _, folder, _ = trained(msda, db_path, "last")
    assert (folder / "checkpoint.pt").is_file() and not (folder / "best.pt").exists()


def test_both_keeps_the_best_epoch_beside_the_last(msda, db_path):
    _, folder, top1 = trained(msda, db_path, "both")
    best = torch.load(folder / "best.pt", weights_only=True)
    last = torch.load(folder / "checkpoint.pt", weights_only=True)
    first_max = top1.index(max(top1))  # a later epoch of equal top-1 does not replace it
    assert best["epoch"] == first_max and best["test_top1"] == pytest.approx(max(top1), abs=1e-4)
    assert last["epoch"] == len(top1) - 1 and best["config"]["checkpoint_keep"] == "both"
    assert best["epoch"] < last["epoch"]  # two different models kept
    assert not all(torch.equal(best["model"][k], last["model"][k]) for k in last["model"])


def test_best_leaves_the_best_model_and_eval_measures_it(msda, db_path):
    run_id, folder, top1 = trained(msda, db_path, "best")
    assert top1.index(max(top1)) < len(top1) - 1, top1  # else the last epoch would pass for the best
    assert not (folder / "checkpoint.pt").exists() and (folder / "best.pt").is_file()
    assert top1 == SCRIPTED_TOP1
    best = torch.load(folder / "best.pt", weights_only=True)
    r = msda("eval", run_id, "--format", "json")
    assert r.code == 0, r.stderr
    (params,) = [p for (p,) in query(db_path, "SELECT params FROM metric WHERE run_id=? AND kind='eval' AND name=? "
                                              "AND params LIKE '%n_examples%'", run_id, TOP1)]
    assert json.loads(params)["epoch"] == best["epoch"] == top1.index(max(top1))  # eval measured best.pt's model

    # a kill after the finish, before checkpoint.pt was removed: the finished run is still its best.pt
    torch.save({"model": best["model"], "epoch": len(top1) - 1}, folder / "checkpoint.pt")
    assert msda("eval", run_id, "--format", "json").code == 0
    epochs = [json.loads(p)["epoch"] for (p,) in query(db_path, "SELECT params FROM metric WHERE run_id=? AND "
                                                          "kind='eval' AND name=? AND params LIKE '%n_examples%' "
                                                          "ORDER BY id", run_id, TOP1)]
    assert epochs == [best["epoch"], best["epoch"]]


def test_an_unknown_keep_is_one_line(msda, db_path):
    r = msda("train", *FAST, "--set", "checkpoint_keep=all")
    assert r.code == 2 and "checkpoint_keep" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not db_path.exists() or not query(db_path, "SELECT id FROM run")
