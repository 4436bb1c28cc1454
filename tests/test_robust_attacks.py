"""FGSM/PGD against closed forms, torchattacks, and the invariants of an L∞ attack."""


import pytest
import torch
from torch import nn

from msda_cli.data import TensorDataset
from msda_cli.errors import MsdaError
from msda_cli.metric_names import CLEAN_TOP1, FGSM, PGD
from msda_cli.models import Normalized
from msda_cli.robust import evaluate_attack, fgsm, pgd

MEAN, STD = 0.4, 0.25


def linear_model(k=4, d=2 * 6 * 6, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(d, k))
    return Normalized(net, (MEAN, MEAN), (STD, STD)).eval()


def conv_model(k=5, seed=0, width=6):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(width * 16, k))
    model = Normalized(net, (MEAN,), (STD,))
    with torch.no_grad():  # non-trivial running statistics
        model.train()(torch.rand(64, 1, 8, 8))
    return model.eval()


def self_labelled(model, n=64, shape=(1, 8, 8), seed=1):
    """Inputs and the model's own predictions as labels: clean accuracy 100 %."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def test_fgsm_matches_closed_form_on_linear_model():
    model = linear_model()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(16, 2, 6, 6, generator=g)
    y = torch.randint(0, 4, (16,), generator=g)
    lin = model.net[1]
    # logits = W (x - m)/s + b;  dCE/dx = Wᵀ (softmax - onehot) / s
    z = ((x - MEAN) / STD).flatten(1)
    p = torch.softmax(z @ lin.weight.T + lin.bias, dim=1)
    grad = ((p - nn.functional.one_hot(y, 4).float()) @ lin.weight / STD).view_as(x)
    expected = (x + 8 / 255 * grad.sign()).clamp(0, 1)
    got = fgsm(model, x, y, eps=8)
    assert torch.equal(got, expected)
    assert (got - x).abs().max() <= 8 / 255 + 1e-7
    assert not torch.equal(got, x.clamp(0, 1))


def test_fgsm_matches_torchattacks_on_conv_model():
    torchattacks = pytest.importorskip("torchattacks")
    model = conv_model()
    x, _ = self_labelled(model, n=32)
    y = torch.arange(32) % 5
    ours = fgsm(model, x, y, eps=8)
    theirs = torchattacks.FGSM(model, eps=8 / 255)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-7, rtol=0)
    assert (ours != x).float().mean() > 0.5


@pytest.mark.parametrize("per_iterate", [True, False])
def test_pgd_stays_in_eps_ball_and_unit_box(per_iterate):
    model = conv_model()
    x, y = self_labelled(model)
    x[:8] = 0.0  # on the box border, so clipping matters
    x[8:16] = 1.0
    res = pgd(model, x, y, eps=8, step_size=3, steps=6, restarts=2,
              generator=torch.Generator().manual_seed(0), per_iterate=per_iterate)
    assert (res.x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert res.fooled.any()
    with torch.no_grad():  # the kept inputs are the ones the bookkeeping says
        assert torch.equal(model(res.x_adv).argmax(1).ne(y), res.fooled)


@pytest.mark.parametrize("restarts", [1, 3])
def test_more_pgd_steps_never_raise_accuracy(restarts):
    model = conv_model()
    x, y = self_labelled(model, n=96)
    fooled = {}
    for steps in (1, 20):
        res = pgd(model, x, y, eps=2, step_size=0.5, steps=steps, restarts=restarts,
                  generator=torch.Generator().manual_seed(5))
        fooled[steps] = res.fooled
    assert 0 < fooled[1].sum() < fooled[20].sum() < len(y)  # the setting is informative
    assert not (fooled[1] & ~fooled[20]).any()  # every example broken in 1 step stays broken


class WrongOnCall(nn.Module):
    """Linear model whose `wrong_call`-th forward pass (1-based) predicts class 1, else class 0."""

    def __init__(self, wrong_call):
        super().__init__()
        self.lin, self.calls, self.wrong_call = nn.Linear(64, 2), 0, wrong_call

    def forward(self, x):
        self.calls += 1
        offset = torch.tensor([0.0, 100.0] if self.calls == self.wrong_call else [100.0, 0.0])
        return self.lin(x.flatten(1)) + offset


def test_an_example_broken_by_any_iterate_stays_broken():
    x, y = torch.rand(6, 1, 8, 8), torch.zeros(6, dtype=torch.long)
    # passes: 1 clean, 2 random start, 3 first iterate (misclassified), 4-5 later iterates, 6 final
    tracked = pgd(WrongOnCall(3), x, y, eps=8, step_size=2, steps=4, generator=torch.Generator().manual_seed(0))
    assert tracked.fooled.all()
    assert (tracked.x_adv - x).abs().max() <= 8 / 255 + 1e-6 and not torch.equal(tracked.x_adv, x)
    final_only = pgd(WrongOnCall(3), x, y, eps=8, step_size=2, steps=4, per_iterate=False,
                     generator=torch.Generator().manual_seed(0))
    assert not final_only.fooled.any()
    assert pgd(WrongOnCall(1), x, y, eps=8, steps=2).fooled.all()  # misclassified clean input counts


def test_dropping_broken_examples_changes_nothing():
    model = conv_model()
    x, y = self_labelled(model)
    a = pgd(model, x, y, eps=3, step_size=1, steps=5, restarts=2, generator=torch.Generator().manual_seed(2))
    b = pgd(model, x, y, eps=3, step_size=1, steps=5, restarts=2, generator=torch.Generator().manual_seed(2),
            drop_broken=False)
    assert torch.equal(a.fooled, b.fooled)
    assert torch.allclose(a.x_adv[a.fooled], b.x_adv[b.fooled], atol=1e-6)


def test_pgd_is_deterministic_given_a_seed():
    model = conv_model()
    x, y = self_labelled(model, n=16)
    run = lambda s: pgd(model, x, y, eps=8, steps=3, generator=torch.Generator().manual_seed(s),
                        per_iterate=False).x_adv
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


class IgnoresInput(nn.Module):
    def __init__(self, k=4):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([0.1, 2.0, -1.0, 0.5])[:k])

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_model_that_ignores_input_keeps_clean_accuracy():
    x = torch.rand(20, 1, 8, 8)
    y = torch.tensor([1, 0, 2, 3, 1] * 4)  # argmax is class 1: clean accuracy 40 %
    ds = TensorDataset(x, y)
    for attack in (FGSM, PGD):
        rows = evaluate_attack(IgnoresInput(), ds, attack=attack, eps=16, steps=3, batch_size=7, progress=False)
        values = {name: value for name, value, _, _ in rows}
        assert values[CLEAN_TOP1] == pytest.approx(40.0)
        assert values[attack] == pytest.approx(40.0)


def test_evaluate_attack_rows_and_transfer_modes():
    model = conv_model()
    x, y = self_labelled(model, n=40)
    ds = TensorDataset(x, y)
    rows = evaluate_attack(model, ds, attack="pgd", eps=8, steps=2, step_size=2, n_examples=30,
                           batch_size=16, progress=False)
    assert [r[0] for r in rows] == [CLEAN_TOP1, PGD]
    assert rows[0][1] == 100.0 and rows[0][3] == {"n_examples": 30}
    assert rows[1][3] == {"attack": "pgd", "eps": 8, "step_size": 2, "steps": 2, "restarts": 1,
                          "n_examples": 30, "mode": "white-box", "source_run": None}
    assert rows[1][1] < 100.0

    other_seed = conv_model(seed=7)
    rows = evaluate_attack(model, ds, attack="pgd", eps=8, steps=2, source_model=other_seed,
                           source_run="abc123", progress=False)
    assert rows[1][3]["mode"] == "gray-box" and rows[1][3]["source_run"] == "abc123"
    other_arch = linear_model(k=5, d=64)
    other_arch = Normalized(other_arch.net, (MEAN,), (STD,))
    rows = evaluate_attack(model, ds, attack="pgd", eps=8, steps=2, source_model=other_arch,
                           source_run="def456", progress=False)
    assert rows[1][3]["mode"] == "black-box"

    fg = evaluate_attack(model, ds, attack="fgsm", eps=8, progress=False, include_clean=False)
    assert fg == [(FGSM, fg[0][1], None, {"attack": "fgsm", "eps": 8, "n_examples": 40, "mode": "white-box"})]


@pytest.mark.parametrize("kwargs, message", [
    (dict(eps=-1), "--eps"),
    (dict(steps=0), "--steps"),
    (dict(step_size=0), "--step-size"),
    (dict(restarts=0), "--restarts"),
    (dict(attack="cw"), "unknown attack"),
    (dict(mode="gray-box"), "needs a source model"),
    (dict(source_model="other-classes"), "trained on other classes"),
])
def test_bad_attack_settings_raise(kwargs, message):
    model = conv_model()
    ds = TensorDataset(torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    if kwargs.get("source_model") == "other-classes":
        kwargs["source_model"] = conv_model(k=3)
    with pytest.raises(MsdaError, match=message):
        evaluate_attack(model, ds, progress=False, **kwargs)


@pytest.mark.parametrize("settings, message", [
    (dict(eps=-1), "--eps must be in [0, 255] (pixel units), got -1"),
    (dict(eps=float("nan")), "--eps must be in [0, 255] (pixel units), got nan"),
    (dict(eps=300), "--eps must be in [0, 255] (pixel units), got 300"),
    (dict(steps=0), "--steps must be at least 1, got 0"),
    (dict(steps=2.5), "--steps must be a whole number, got 2.5"),
    (dict(step_size=0), "--step-size must be a positive finite number (pixel units), got 0"),
    (dict(step_size=float("inf")), "--step-size must be a positive finite number (pixel units), got inf"),
    (dict(restarts=0), "--restarts must be at least 1, got 0"),
    (dict(attack="cw"), "unknown attack 'cw'; choose from: fgsm, pgd, autoattack"),
    (dict(n_examples=0), "--n-examples must be at least 1, got 0"),
    (dict(batch_size=0), "--batch-size must be at least 1, got 0"),
])
def test_each_robust_setting_has_one_check_and_one_message(settings, message):
    """The command line's request, the attack evaluation, PGD itself and the subset loader agree."""
    from msda_cli.evaluation import subset_loader
    from msda_cli.robust.command import RobustRequest

    def raised(fn) -> str:
        with pytest.raises(MsdaError) as info:
            fn()
        return str(info.value)

    request = {**dict(attack="pgd", eps=8, steps=3, step_size=2, restarts=1, n_examples=None, batch_size=4), **settings}
    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    ds = TensorDataset(x, y)
    messages = {raised(lambda: RobustRequest(**request).check()),
                raised(lambda: evaluate_attack(conv_model(), ds, progress=False, **request))}
    if settings.keys() & {"n_examples", "batch_size"}:
        messages.add(raised(lambda: subset_loader(ds, request["n_examples"], 0, request["batch_size"])))
    elif "attack" not in settings:
        messages.add(raised(lambda: pgd(conv_model(), x, y, request["eps"], request["step_size"], request["steps"],
                                        request["restarts"])))
    assert messages == {message}


def test_same_architecture_compares_module_settings_not_only_shapes():
    """A stem stride changes the network but no parameter shape: another architecture (black-box), one rule."""
    from msda_cli.models import build_model
    from msda_cli.robust.attacks import same_architecture

    torch.manual_seed(0)
    a = build_model("preactresnet18", num_classes=10)
    b = build_model("preactresnet18", num_classes=10)  # other weights, same architecture
    strided = build_model("preactresnet18", num_classes=10, stem_stride=2)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in strided.state_dict().items()}
    assert same_architecture(a, b) and not same_architecture(a, strided)
