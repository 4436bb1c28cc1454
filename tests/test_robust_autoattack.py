"""AutoAttack (standard, L∞) through torchattacks: against PGD, against torchattacks itself, the stored settings."""

import json
import sys

import pytest
import torch
from torch import nn

from conftest import query, train_shared_runs
from msda_cli.data import TensorDataset
from msda_cli.metric_names import AUTOATTACK, CLEAN_TOP1, PGD, ROBUST
from msda_cli.models import Normalized
from msda_cli.robust import evaluate_attack
from msda_cli.robust.autoattack import evaluate_autoattack

torchattacks = pytest.importorskip("torchattacks")

EPS = 3  # pixel units: PGD leaves some of the tiny model's examples standing
STANDARD = {"apgd-ce": 100, "apgd-t": 100, "fab-t": 100, "square": 5000}  # Croce & Hein's standard AutoAttack


def tiny_model(k=10, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, k))
    return Normalized(net, (0.5,), (0.25,)).eval()


def labelled(model, n=48, seed=1, wrong=8):
    """Inputs labelled with the model's predictions, except the first `wrong` (clean errors)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[:wrong] = (y[:wrong] + 1) % model(x[:1]).shape[1]
    return x, y


@pytest.fixture
def fewer_square_queries(monkeypatch):
    """Square at 200 queries instead of 5 000, in ours and torchattacks' alike: on a 2-core CPU its 5 000
    iterations take minutes, and the comparison stays exact."""
    from torchattacks.attacks import autoattack

    class Square(autoattack.Square):
        def __init__(self, *a, **kw):
            super().__init__(*a, **{**kw, "n_queries": 200})

    monkeypatch.setattr(autoattack, "Square", Square)


def test_autoattack_is_torchattacks_standard_autoattack_on_the_still_robust_and_below_pgd(monkeypatch,
                                                                                          fewer_square_queries):
    model = tiny_model(k=4)
    x, y = labelled(model, n=24, wrong=4)
    seen, real = [], torchattacks.AutoAttack.forward
    monkeypatch.setattr(torchattacks.AutoAttack, "forward", lambda self, a, b: seen.append(len(a)) or real(self, a, b))
    rows = evaluate_autoattack(model, TensorDataset(x, y), eps=EPS, seed=0, progress=False)
    assert seen == [20]  # the correctly classified examples only
    (clean_name, clean, _, clean_params), (name, value, epoch, params) = rows
    assert (clean_name, clean, clean_params) == (CLEAN_TOP1, 100.0 * 20 / 24, {"n_examples": 24})
    assert name == AUTOATTACK and epoch is None
    assert params == {"attack": "autoattack", "version": "standard", "norm": "Linf", "eps": 3, "n_examples": 24,
                      "mode": "white-box", "library": "torchattacks", "iterations": STANDARD}

    direct = torchattacks.AutoAttack(model, norm="Linf", eps=EPS / 255, version="standard", n_classes=4, seed=0)
    for sub in direct._autoattack.attacks[:3]:  # APGD-CE, APGD-T, FAB-T at the standard's 100 on their side too
        sub.steps = 100
    with torch.no_grad():
        theirs = int(model(direct(x, y)).argmax(dim=1).eq(y).sum())
    assert value == 100.0 * theirs / 24

    pgd = evaluate_attack(model, TensorDataset(x, y), attack=PGD, eps=EPS, steps=10, step_size=1, progress=False)[1][1]
    assert 0 < value <= pgd < clean


@pytest.mark.parametrize("k", [3, 12])
def test_autoattack_takes_at_most_nine_target_classes_and_keeps_the_random_state(k, monkeypatch):
    from msda_cli.robust.autoattack import still_robust

    model = tiny_model(k=k)
    x, y = labelled(model, n=8, wrong=2)
    made, built, real = [], [], torchattacks.AutoAttack.__init__
    monkeypatch.setattr(torchattacks.AutoAttack, "__init__",
                        lambda self, *a, **kw: made.append(kw["n_classes"]) or built.append(self)
                        or real(self, *a, **kw))
    rng = torch.get_rng_state()
    correct, robust = still_robust(model, x, y, eps=64, num_classes=k)  # a large ε: APGD-CE breaks them all
    assert torch.equal(torch.get_rng_state(), rng)  # torchattacks reseeds the global generator; ours is restored
    assert made == [min(k, 10)]  # torchattacks attacks n_classes - 1 targets: the standard's 9, or all
    apgd, apgd_t, fab_t, square = built[0]._autoattack.attacks
    assert (apgd.steps, apgd_t.steps, fab_t.steps, square.n_queries) == (100, 100, 100, 5000)  # not torchattacks' 10
    assert correct.sum() == 6 and not robust.any()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    results = tmp_path_factory.mktemp("autoattack-results")
    db = train_shared_runs(results, ["--recipe", "digits-mixup", "--set", "data.options.image_size=16",
                                     "--set", "batch_size=128", "--epochs", "1"])
    return results, db, query(db, "SELECT id FROM run")[0][0]


def test_msda_robust_autoattack_stores_its_settings(msda, trained, monkeypatch):
    results, db, run_id = trained
    monkeypatch.setenv("MSDA_RESULTS", str(results))
    monkeypatch.setenv("MSDA_DB", str(db))
    r = msda("robust", run_id, "--attack", "autoattack", "--eps", "32", "--n-examples", "24")
    assert r.code == 0, r.stderr
    rows = query(db, "SELECT name, value, params FROM metric WHERE run_id=? AND kind=? ORDER BY id", run_id, ROBUST)
    (_, clean, _), (name, value, params) = rows[-2:]
    assert name == AUTOATTACK and 0 <= value <= clean and AUTOATTACK in r.stdout
    assert json.loads(params) == {"attack": "autoattack", "version": "standard", "norm": "Linf", "eps": 32,
                                  "n_examples": 24, "mode": "white-box", "library": "torchattacks",
                                  "iterations": STANDARD}

    before = query(db, "SELECT count(*) FROM metric")
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # not installed
    r = msda("robust", run_id, "--attack", "autoattack")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "pip install --no-deps" in r.stderr
    assert query(db, "SELECT count(*) FROM metric") == before
