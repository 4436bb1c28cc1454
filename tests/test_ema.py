"""AdamW as configured, and the EMA of the weights: updated every step, evaluated, stored, resumed exactly."""

from __future__ import annotations

import json

import torch

from conftest import assert_resume_matches_straight, interrupt_in_epoch, query
from msda_cli.config import validate
from msda_cli.engine import build
from msda_cli.metric_names import EVAL, RAW_TOP1, TEST_TOP1, TOP1, TRAIN
from msda_cli.runs import load_run

torch.set_num_threads(1)

DIGITS = ["train", "--recipe", "digits-vanilla", "--epochs", "3", "--set", "optim.name=adamw", "--set",
          "optim.lr=0.001", "--set", "optim.weight_decay=0.05"]


def test_adamw_is_torchs_with_the_configured_betas_eps_and_decoupled_weight_decay():
    cfg = validate({"dataset": "digits", "arch": "mlp", "epochs": 1, "optim": {
        "name": "adamw", "lr": 0.002, "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.05}})
    model = torch.nn.Linear(3, 2)
    opt = build.build_optimizer(cfg, model)
    assert type(opt) is torch.optim.AdamW
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (0.002, (0.8, 0.95), 1e-6, 0.05)
    # decoupled: a zero gradient still shrinks the weights by lr·wd (Adam's L2 term would move nothing: m = 0)
    w = model.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.allclose(model.weight, w * (1 - 0.002 * 0.05))


def test_ema_is_timms_model_ema_updated_every_step():
    from timm.utils import ModelEmaV3

    cfg = validate({"dataset": "digits", "arch": "mlp", "epochs": 1, "ema": 0.9})
    assert build.build_ema(validate({"dataset": "digits", "arch": "mlp", "epochs": 1}), None, "cpu") is None
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = build.build_ema(cfg, model, "cpu")
    assert isinstance(ema, ModelEmaV3) and ema.decay == 0.9
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model(torch.randn(4, 2))  # BatchNorm statistics move: averaged too, as timm does
    ema.update(model)
    assert torch.allclose(ema.module[0].weight, 0.9 * start + 0.1 * model[0].weight)
    assert torch.allclose(ema.module[1].running_mean, 0.1 * model[1].running_mean)


def test_a_run_with_ema_stores_both_top1s_and_is_its_ema_model(msda, db_path):
    assert msda(*DIGITS, "--set", "ema=0.9").code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    per_epoch = query(db_path, "SELECT name, COUNT(*) FROM metric WHERE kind=? AND name IN (?, ?) GROUP BY name",
                      TRAIN, TEST_TOP1, RAW_TOP1)
    assert dict(per_epoch) == {TEST_TOP1: 3, RAW_TOP1: 3}
    final = dict(query(db_path, "SELECT name, value FROM metric WHERE kind=? AND epoch IS NULL", EVAL))
    assert {TOP1, RAW_TOP1} <= set(final)
    from msda_cli.store import Store

    store = Store(db_path, create=False)
    state = torch.load(store.get_run(run_id).checkpoint, weights_only=True)
    loaded = load_run(store, run_id)
    assert set(state["ema"]) == set(state["model"])
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    # eval and robust measure the EMA weights
    assert all(torch.equal(v, state["ema"][k]) for k, v in loaded.model.state_dict().items())
    assert json.loads(query(db_path, "SELECT config FROM run")[0][0])["ema"] == 0.9


def test_resumed_run_with_ema_equals_the_straight_one(msda, db_path, monkeypatch):
    args = [*DIGITS, "--set", "ema=0.9"]
    assert msda(*args).code == 0
    interrupt_in_epoch(monkeypatch, msda, args)
    assert_resume_matches_straight(msda, db_path, epochs=3)
    emas = [torch.load(c, weights_only=True)["ema"] for (c,) in query(db_path, "SELECT checkpoint FROM run")]
    assert all(torch.equal(emas[0][k], emas[1][k]) for k in emas[0])
    tops = [query(db_path, "SELECT value FROM metric WHERE run_id=? AND name=? AND epoch IS NULL", r, TOP1)
            for (r,) in query(db_path, "SELECT id FROM run ORDER BY created_at")]
    assert tops[0] == tops[1]
