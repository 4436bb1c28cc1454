"""data.val_fraction: a stratified, seeded validation split of the training split, evaluated every epoch;
data.options.split_seed: seed; checkpoint_keep: best stores the best epoch's final rows."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import assert_resume_matches_straight, interrupt_in_epoch, query
from msda_cli.data.split import holdout, resolve_split_seed
from msda_cli.errors import MsdaError
from msda_cli.metric_names import EVAL, TEST_LOSS, TEST_TOP1, TEST_TOP5, TOP1, TRAIN, VAL_LOSS, VAL_TOP1

FAST = ["train", "--recipe", "digits-vanilla", "--set", "data.options.image_size=16", "--set", "batch_size=128",
        "--epochs", "3"]


def test_holdout_is_stratified_disjoint_and_seeded():
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[order]
    keep, val = holdout(targets, 0.2, seed=7)
    assert sorted(keep.tolist() + val.tolist()) == list(range(100))  # a partition
    assert torch.bincount(targets[val]).tolist() == [10, 6, 4]  # 20 % of every class
    again_keep, again_val = holdout(targets, 0.2, seed=7)
    assert torch.equal(val, again_val) and torch.equal(keep, again_keep)
    assert not torch.equal(holdout(targets, 0.2, seed=8)[1], val)
    assert len(holdout(targets, 0.0, seed=7)[1]) == 0
    # a class of one sample stays in training; one of two gives one
    keep, val = holdout(torch.tensor([0, 1, 1, 2, 2, 2, 2]), 0.1, seed=0)
    assert sorted(torch.tensor([0, 1, 1, 2, 2, 2, 2])[val].tolist()) == [1, 2]


def test_holdout_refuses_a_fraction_outside_0_1():
    with pytest.raises(MsdaError):
        holdout(torch.tensor([0, 1] * 5), 1.0, seed=0)
    with pytest.raises(MsdaError):
        holdout(torch.tensor([0, 1] * 5), -0.1, seed=0)


def test_split_seed_follows_the_run_seed():
    assert resolve_split_seed({"split_seed": "seed", "test_fraction": 0.3}, 4) == {"split_seed": 4,
                                                                                "test_fraction": 0.3}
    assert resolve_split_seed({"split_seed": 2}, 4) == {"split_seed": 2}
    with pytest.raises(MsdaError):
        resolve_split_seed({"split_seed": "run"}, 4)


def test_split_seed_seed_gives_each_seed_its_own_tabular_split():
    from msda_cli.config import read_recipe, validate
    from msda_cli.engine.build import build_data

    raw = read_recipe("iris-vanilla")
    raw.setdefault("data", {}).setdefault("options", {})["split_seed"] = "seed"
    tests = [build_data(validate({**raw, "seed": s}), train=False).base.x for s in (0, 0, 1)]
    assert torch.equal(tests[0], tests[1]) and not torch.equal(tests[0], tests[2])


def test_val_metrics_every_epoch_and_final(msda, db_path):
    r = msda(*FAST, "--set", "data.val_fraction=0.2")
    assert r.code == 0, r.stderr
    (run_id,), = query(db_path, "SELECT id FROM run")
    for name in (TEST_TOP1, TEST_TOP5, TEST_LOSS, VAL_TOP1, VAL_LOSS):
        epochs = [e for (e,) in query(db_path, "SELECT epoch FROM metric WHERE run_id=? AND kind=? AND name=? "
                                               "ORDER BY epoch", run_id, TRAIN, name)]
        assert epochs == [0, 1, 2], name
    finals = dict(query(db_path, "SELECT name, value FROM metric WHERE kind=? AND epoch IS NULL", EVAL))
    last = dict(query(db_path, "SELECT name, value FROM metric WHERE kind=? AND epoch=2", TRAIN))
    assert finals[VAL_TOP1] == pytest.approx(last[VAL_TOP1]) and finals[TOP1] == pytest.approx(last[TEST_TOP1])
    assert 0 < finals[VAL_LOSS] and finals["nll"] == pytest.approx(last[TEST_LOSS])
    for name in (TEST_LOSS, VAL_TOP1):  # MixupE Figure 1 plots the test loss per epoch
        out = db_path.parent / f"{name}.png"
        assert msda("plot", "curves", run_id, "--metric", name, "--out", str(out)).code == 0 and out.is_file()


def test_without_val_split_no_val_rows_but_test_loss(msda, db_path):
    assert msda(*FAST, "--epochs", "1").code == 0
    names = {n for (n,) in query(db_path, "SELECT name FROM metric")}
    assert TEST_LOSS in names and VAL_TOP1 not in names and VAL_LOSS not in names


def test_the_val_split_is_not_trained_on(monkeypatch):
    from msda_cli.config import read_recipe, validate
    from msda_cli.engine import build

    cfg = validate({**read_recipe("digits-vanilla"), "data": {"val_fraction": 0.25, "options": {"image_size": 16}}})
    full = build.build_data(cfg, train=True)
    train, val = build.split_training(cfg, full)
    assert len(train) + len(val) == len(full) and abs(len(val) - 0.25 * len(full)) <= 10
    # the validation samples are the training split's, read without augmentation
    keep, held = holdout(full.targets, 0.25, cfg.seed)
    assert torch.equal(val.targets, full.targets[held]) and torch.equal(train.targets, full.targets[keep])
    # a subset trains on its samples outside the validation split, in its own order
    subset = torch.tensor([held[0].item(), keep[3].item(), keep[1].item()])
    train, _ = build.split_training(cfg, full, subset)
    assert train.base.indices == [keep[3].item(), keep[1].item()]


def test_resume_with_a_val_split_is_bit_identical(msda, db_path, monkeypatch):
    args = [*FAST, "--set", "data.val_fraction=0.2"]
    assert msda(*args).code == 0
    interrupt_in_epoch(monkeypatch, msda, args)
    assert_resume_matches_straight(msda, db_path, epochs=3)
    vals = [[v for (v,) in query(db_path, "SELECT value FROM metric WHERE run_id=? AND kind=? AND name=? "
                                          "ORDER BY epoch", r, TRAIN, VAL_TOP1)]
            for (r,) in query(db_path, "SELECT id FROM run ORDER BY created_at")]
    assert len(vals[0]) == 3 and vals[0] == vals[1]


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "x"])
def test_bad_val_fraction_is_one_line_exit_2_nothing_written(msda, db_path, value):
    r = msda(*FAST, "--set", f"data.val_fraction={value}")
    assert r.code == 2 and "val_fraction" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not db_path.exists() or query(db_path, "SELECT count(*) FROM run") == [(0,)]


def test_checkpoint_keep_best_stores_the_best_epochs_final_rows(msda, db_path, monkeypatch):
    """The final eval rows describe the model eval/robust measure (best.pt): the best validation epoch's."""
    import msda_cli.engine.train as train

    real, calls = train.evaluate, []
    scripted = [10.0, 50.0, 30.0]  # the validation top-1 of epochs 0, 1, 2: the best epoch is 1

    def evaluate(model, loader, accelerator=None):
        metrics = dict(real(model, loader, accelerator))
        calls.append(1)
        if len(calls) % 2 == 0:  # test, then validation, every epoch
            metrics[TOP1] = scripted[len(calls) // 2 - 1]
        return metrics

    monkeypatch.setattr(train, "evaluate", evaluate)
    assert msda(*FAST, "--set", "data.val_fraction=0.2", "--set", "checkpoint_keep=best").code == 0
    (run_id,), = query(db_path, "SELECT id FROM run")
    at_1 = dict(query(db_path, "SELECT name, value FROM metric WHERE kind=? AND epoch=1", TRAIN))
    finals = dict(query(db_path, "SELECT name, value FROM metric WHERE kind=? AND epoch IS NULL", EVAL))
    assert finals[VAL_TOP1] == 50.0 and finals[TOP1] == pytest.approx(at_1[TEST_TOP1])
    best = torch.load(db_path.parent / "runs" / run_id / "best.pt", weights_only=True)
    assert best["epoch"] == 1 and best["score"] == 50.0
    assert json.loads(query(db_path, "SELECT config FROM run")[0][0])["data"]["val_fraction"] == 0.2
