"""Architecture registry: names, parameter counts against the papers, shapes, manifold layers,
init, channels_last / autocast, and errors.

Parameter counts are taken on the meta device (no memory, no init cost); forward passes use
batch 2 at 32x32 (64x64 for resnet50) in eval mode.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.models import MODELS, Normalized, build_model

torch.set_num_threads(1)

NAMES = {
    "digits-cnn", "mlp", "resnet56", "wrn28-2", "wrn28-8", "wrn28-10", "wrn16-8",
    "preactresnet18", "preactresnet34", "preactresnet50", "preactresnet101",
    "pyramidnet110", "pyramidnet200", "resnext29-4-24", "resnet50", "resnet152", "vit-b16", "coatnet-0",
    "lenet", "vgg11", "vgg13", "gin",
}  # fmt: skip
SPECTROGRAM = {"lenet", "vgg11", "vgg13"}  # linear layers sized for 160×101 (test_data_speech.py tests them too)
TIMM = {"vit-b16", "coatnet-0"}  # tested in test_models_timm.py (their input size is an option)
GRAPH = {"gin"}  # takes graph batches: tested in test_data_tu.py
RESIDUAL = sorted(NAMES - {"digits-cnn", "mlp"} - TIMM - SPECTROGRAM - GRAPH)
MLP_FEATURES = 8


def n_params(name: str, num_classes: int, **kwargs) -> int:
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, **kwargs)
    return sum(p.numel() for p in model.parameters())


def tiny_input(name: str, batch: int = 2, in_chans: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        return torch.rand(batch, MLP_FEATURES, generator=g)
    if name in SPECTROGRAM:
        return torch.rand(batch, in_chans, 160, 101, generator=g)
    size = 64 if name in ("resnet50", "resnet152") else 32
    return torch.rand(batch, in_chans, size, size, generator=g)


def make(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    if name == "mlp":
        kwargs.setdefault("in_chans", MLP_FEATURES)
    return build_model(name, num_classes=num_classes, **kwargs).eval()


def test_registered_names_are_exactly_the_documented_ones():
    assert set(MODELS) == NAMES


# Counts as the papers print them (millions, rounded), with a tolerance of the rounding.
PUBLISHED = [
    # DCutMix / CutMix Table (CIFAR-100): PyramidNet-110 (alpha 64) 1.7 M, PyramidNet-200 (alpha 240) 26.8 M
    ("pyramidnet110", 100, {}, 1.7, 0.05),
    ("pyramidnet200", 100, {}, 26.8, 0.05),
    # torchvision / He et al.: ResNet-50 25.6 M (ImageNet)
    ("resnet50", 1000, {}, 25.6, 0.05),
    ("resnet152", 1000, {}, 60.2, 0.05),  # torchvision's 60.2 M (the DCutMix Table 5 substitute model)
    # He et al. 2016 (CIFAR-10, option A shortcuts): ResNet-56 0.85 M
    ("resnet56", 10, {}, 0.85, 0.005),
    ("resnet56", 100, {}, 0.86, 0.005),
    # Zagoruyko & Komodakis (CIFAR-10): WRN-28-10 36.5 M, WRN-16-8 11.0 M, WRN-28-2 1.5 M
    ("wrn28-10", 10, {}, 36.5, 0.05),
    ("wrn16-8", 10, {}, 11.0, 0.05),
    ("wrn28-2", 10, {}, 1.5, 0.05),
    # Common CIFAR references: PreActResNet-18 11.2 M
    ("preactresnet18", 10, {}, 11.2, 0.05),
]


@pytest.mark.parametrize("name,classes,kwargs,millions,tol", PUBLISHED)
def test_parameter_count_matches_publication(name, classes, kwargs, millions, tol):
    assert abs(n_params(name, classes, **kwargs) / 1e6 - millions) <= tol


# Exact counts of this implementation (regression pins; see the module docstrings).
EXACT = [
    ("resnet56", 10, {}, 853_018),
    ("resnet56", 100, {"shortcut": "B"}, 861_620),
    ("wrn28-2", 100, {}, 1_479_220),
    ("wrn28-8", 100, {}, 23_401_012),
    ("wrn28-10", 10, {}, 36_479_194),
    ("wrn16-8", 100, {}, 11_007_540),
    ("preactresnet18", 100, {}, 11_218_340),
    ("preactresnet34", 100, {}, 21_326_500),
    ("preactresnet50", 100, {}, 23_697_572),
    ("preactresnet101", 100, {}, 42_689_700),
    ("pyramidnet110", 100, {}, 1_725_300),
    ("pyramidnet110", 100, {"bottleneck": False}, 2_623_666),
    ("pyramidnet200", 100, {}, 26_844_952),
    ("resnext29-4-24", 100, {}, 4_937_252),
    ("resnet50", 1000, {}, 25_557_032),  # torchvision's documented count
    ("resnet152", 1000, {}, 60_192_808),  # torchvision's documented count
    ("mlp", 3, {"in_chans": 10}, 10 * 128 + 128 + 128 * 128 + 128 + 128 * 3 + 3),
]


@pytest.mark.parametrize("name,classes,kwargs,count", EXACT)
def test_parameter_count_exact(name, classes, kwargs, count):
    assert n_params(name, classes, **kwargs) == count


def test_head_grows_with_classes_by_feature_width():
    # the linear head is the only class-dependent part: 90 more classes = 90 * (width + 1)
    assert n_params("resnet56", 100) - n_params("resnet56", 10) == 90 * (64 + 1)
    assert n_params("wrn28-10", 100) - n_params("wrn28-10", 10) == 90 * (640 + 1)
    assert n_params("pyramidnet200", 100) - n_params("pyramidnet200", 10) == 90 * (4 * (16 + 240) + 1)


@pytest.mark.parametrize("name", sorted(NAMES - TIMM - GRAPH))
def test_forward_shape(name):
    model = make(name, num_classes=7)
    with torch.no_grad():
        out = model(tiny_input(name))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["preactresnet18", "preactresnet50"])
def test_preactresnet_runs_at_64px_and_stem_stride(name):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert make(name, num_classes=5)(x).shape == (2, 5)
        assert make(name, num_classes=5, stem_stride=2)(x).shape == (2, 5)


@pytest.mark.parametrize("name", ["resnet56", "wrn16-8", "preactresnet18", "pyramidnet110", "resnext29-4-24",
                                  "resnet50", "resnet152"])
def test_in_chans(name):
    model = make(name, num_classes=4, in_chans=1)
    with torch.no_grad():
        assert model(tiny_input(name, in_chans=1)).shape == (2, 4)
    with pytest.raises(RuntimeError):
        model(tiny_input(name, in_chans=3))


@pytest.mark.parametrize("name", RESIDUAL + ["mlp"])
def test_manifold_layers_carry_the_whole_hidden_state(name):
    """Replacing a manifold layer's output (forward hook) by the batch-flipped output must flip
    the logits: the layer's output is the network's entire state at that depth."""
    model = make(name)
    layers = model.manifold_layers()
    assert len(layers) >= 2
    assert all(isinstance(m, nn.Module) for m in layers)
    assert len({id(m) for m in layers}) == len(layers)
    x = tiny_input(name)
    with torch.no_grad():
        base = model(x)
        scale = base.abs().max()
        assert (base[0] - base[1]).abs().max() > 1e-3 * scale  # the two samples differ
        for i, layer in enumerate(layers):
            handle = layer.register_forward_hook(lambda mod, inp, out: out.flip(0))
            try:
                out = model(x)
            finally:
                handle.remove()
            assert torch.allclose(out, base.flip(0), rtol=1e-4, atol=1e-5 * scale), f"layer {i}"


def test_manifold_layers_in_forward_order():
    model = make("preactresnet18")
    order = []
    handles = [m.register_forward_hook(lambda mod, inp, out, i=i: order.append(i))
               for i, m in enumerate(model.manifold_layers())]
    with torch.no_grad():
        model(tiny_input("preactresnet18"))
    for h in handles:
        h.remove()
    assert order == list(range(len(model.manifold_layers())))


def test_normalized_wrapper_forwards_manifold_layers():
    net = make("resnet56")
    wrapped = Normalized(net, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    assert wrapped.manifold_layers() == net.manifold_layers()


BIG = {"pyramidnet200", "preactresnet101", "wrn28-10", "wrn28-8"}  # siblings of smaller family members


@pytest.mark.parametrize("name", sorted(NAMES - BIG - TIMM - GRAPH))
def test_every_parameter_gets_a_gradient(name):
    """No dead modules: every parameter is on the forward path (so counts are meaningful)."""
    model = make(name).train()
    model(tiny_input(name)).logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("name", ["resnet56", "wrn28-2", "preactresnet50", "pyramidnet110", "resnext29-4-24"])
def test_he_init(name):
    model = make(name)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(bool((m.weight == 1).all()) and bool((m.bias == 0).all()) for m in bns)
    conv = max((m for m in model.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
    fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.05)
    assert all(bool((m.bias == 0).all()) for m in model.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("name", ["resnet56", "wrn28-2", "preactresnet18", "preactresnet50", "pyramidnet110",
                                  "resnext29-4-24", "resnet50"])
def test_channels_last_and_autocast(name):
    model = make(name)
    x = tiny_input(name)
    with torch.no_grad():
        base = model(x)
        model = model.to(memory_format=torch.channels_last)
        xcl = x.contiguous(memory_format=torch.channels_last)
        out = model(xcl)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(xcl)
    scale = base.abs().max()
    assert torch.allclose(out, base, rtol=1e-4, atol=1e-5 * scale)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert (low.float() - base).norm() / base.norm() < 0.05


def test_wrn_dropout_option_is_active_in_training():
    model = make("wrn28-2", dropout=0.3).train()
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.3 for m in model.modules()) == 12
    x = tiny_input("wrn28-2")
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, model(x))


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(MsdaError) as err:
        build_model("resnet57", num_classes=10)
    msg = str(err.value)
    assert "resnet57" in msg
    assert all(name in msg for name in NAMES)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("wrn28-10", {"droput": 0.3}),
        ("resnet56", {"shortcut": "C"}),
        ("preactresnet18", {"stem_stride": 3}),
        ("wrn16-8", {"dropout": 1.5}),
        ("resnext29-4-24", {"cardinality": 8}),
        ("pyramidnet110", {"alpha": -1}),
        ("digits-cnn", {"depth": 3}),
        ("mlp", {"hidden": 0}),
    ],
)
def test_bad_options_raise_msda_error(name, kwargs):
    with pytest.raises(MsdaError):
        build_model(name, num_classes=10, **kwargs)


def test_options_and_defaults_are_the_constructors_signatures():
    from msda_cli.models import model_options

    assert model_options("pyramidnet200") == {"alpha": 240, "bottleneck": True, "survival": 1.0,
                                              "dropblock_keep": 1.0, "dropblock_size": 3}
    assert model_options("resnext29-4-24") == {} and model_options("digits-cnn") == {"width": 32}
    for name in MODELS:  # no constructor takes a catch-all: every option is named, with its default
        kinds = {p.kind for p in inspect.signature(MODELS[name]).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, name
    with pytest.raises(MsdaError, match=r"architecture 'mlp' has no option 'width'; valid: depth, hidden"):
        build_model("mlp", num_classes=3, width=4)
    assert build_model("pyramidnet110", num_classes=10, alpha=12).fc.in_features != \
        build_model("pyramidnet110", num_classes=10).fc.in_features


@pytest.mark.parametrize("name", ["resnet50", "resnet152"])
def test_imagenet_resnets_are_torchvisions_architectures(name):
    """The same modules and parameter shapes as torchvision's constructor of that name (weights=None)."""
    import torchvision

    with torch.device("meta"):
        ours = build_model(name, num_classes=1000)
        theirs = getattr(torchvision.models, name)(weights=None)
    assert [type(m) for m in ours.modules()][1:] == [type(m) for m in theirs.modules()][1:]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
