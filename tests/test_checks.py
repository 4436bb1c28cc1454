"""The one validation idiom: whole numbers, finite numbers in a range and choices, each in one message shape,
and the places that check a value agreeing with it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from msda_cli import subsample
from msda_cli.analysis import gradprod, landscape
from msda_cli.checks import check_choice, check_float, check_int
from msda_cli.data import build_dataset
from msda_cli.errors import MsdaError
from msda_cli.mixing import build_mixer
from msda_cli.models import build_model
from msda_cli.render import check_format
from msda_cli.robust.attacks import check_attack
from msda_cli.subsample import ScoreSettings


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(MsdaError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_whole_numbers():
    assert check_int("--steps", 3, min=1) == 3 and check_int("k", 4.0, min=2) == 4
    assert type(check_int("n", np.int64(5))) is int
    assert message(check_int, "--steps", 0, min=1) == "--steps must be at least 1, got 0"
    assert message(check_int, "--steps", 2.5, min=1) == "--steps must be a whole number, got 2.5"
    assert message(check_int, "--steps", True, min=1) == "--steps must be a whole number, got True"
    assert message(check_int, "k", "3", min=2) == "k must be a whole number, got '3'"
    assert message(check_int, "k", math.nan) == "k must be a whole number, got nan"
    assert message(check_int, "n", 11, max=10) == "n must be at most 10, got 11"
    assert message(check_int, "n", 0, min=1, max=10) == "n must be in [1, 10], got 0"
    assert message(check_int, "--batch-size", 1, min=2, note="partners come from the batch") == (
        "--batch-size must be at least 2 (partners come from the batch), got 1")


@pytest.mark.parametrize("kwargs, value, text", [
    (dict(min=0, max=255, note="pixel units"), -1, "--x must be in [0, 255] (pixel units), got -1"),
    (dict(min=0, max=255, note="pixel units"), math.nan, "--x must be in [0, 255] (pixel units), got nan"),
    (dict(min=0, max=1, open="min"), 0, "--x must be in (0, 1], got 0"),
    (dict(min=0, max=1, open="max"), 1.0, "--x must be in [0, 1), got 1"),
    (dict(min=0, max=1, open="both"), 1.5, "--x must be in (0, 1), got 1.5"),
    (dict(min=0, open="min"), 0, "--x must be a positive finite number, got 0"),
    (dict(min=0, open="min"), math.inf, "--x must be a positive finite number, got inf"),
    (dict(min=0), -0.5, "--x must be a non-negative finite number, got -0.5"),
    (dict(min=2, open="min"), 2, "--x must be a finite number > 2, got 2"),
    (dict(min=2), -math.inf, "--x must be a finite number >= 2, got -inf"),
    (dict(max=3, open="max"), 3, "--x must be a finite number < 3, got 3"),
    (dict(), math.nan, "--x must be a finite number, got nan"),
    (dict(), "[", "--x must be a number, got '['"),
    (dict(), False, "--x must be a number, got False"),
    (dict(), None, "--x must be a number, got None"),
])
def test_finite_numbers_in_a_range(kwargs, value, text):
    assert message(check_float, "--x", value, **kwargs) == text


def test_accepted_numbers_come_back_as_floats():
    assert check_float("a", 1, min=0, open="min") == 1.0 and isinstance(check_float("a", 1), float)
    assert check_float("a", "1e-3", min=0) == 0.001  # YAML leaves 1e-3 as text
    assert check_float("q", 0, min=0, max=1) == 0.0 and check_float("q", 1, min=0, max=1) == 1.0
    with pytest.raises(ValueError, match="open must be one of"):
        check_float("a", 1, min=0, open="low")


def test_choices():
    assert check_choice("attack", "pgd", ("fgsm", "pgd")) == "pgd"
    assert message(check_choice, "attack", "cw", ("fgsm", "pgd")) == "unknown attack 'cw'; choose from: fgsm, pgd"
    assert message(check_choice, "PreActResNet stem_stride", 3, (1, 2)) == (
        "unknown PreActResNet stem_stride 3; choose from: 1, 2")


@pytest.mark.parametrize("call, text", [
    (lambda: build_mixer("hmix", r=2), "r must be in [0, 1], got 2"),
    (lambda: build_mixer("dcutmix", k=1), "k must be at least 2, got 1"),
    (lambda: build_mixer("cutmix", mask_mode="pixel"), "unknown mask_mode 'pixel'; choose from: batch, sample"),
    (lambda: build_mixer("mixup", smoothing=1), "smoothing must be in [0, 1), got 1"),
    (lambda: build_mixer("nope"), "unknown method 'nope'; choose from: "),
    (lambda: build_model("mlp", num_classes=2, depth=0), "mlp depth must be at least 1, got 0"),
    (lambda: build_model("wrn16-8", num_classes=2, dropout=1), "WideResNet dropout must be in [0, 1), got 1"),
    (lambda: build_model("preactresnet18", num_classes=2, stem_stride=3),
     "unknown PreActResNet stem_stride 3; choose from: 1, 2"),
    (lambda: build_dataset("digits", image_size=0), "digits image_size must be at least 1, got 0"),
    (lambda: check_format("xml"), "unknown format 'xml'; choose from: rich, markdown, latex, csv, json"),
    (lambda: ScoreSettings(anchor_share=1).check(), "--anchor-share must be in (0, 1), got 1"),
    (lambda: ScoreSettings(batch_size=1).check(),
     "--batch-size must be at least 2 (partners come from the batch), got 1"),
    (lambda: subsample.plan(["1.5"], [], [], []), "--ratio must be in (0, 1], got 1.5"),
    (lambda: subsample.plan(["0.1"], ["entropy"], [], []),
     "unknown measure 'entropy'; choose from: cv, mean, std, random"),
    (lambda: check_attack("pgd", eps=8, step_size=-1),
     "--step-size must be a positive finite number (pixel units), got -1"),
    (lambda: landscape.check_request(0, 21, 1, 8, 8), "--span must be a positive finite number, got 0"),
    (lambda: gradprod.check_request(8, 2, 8, "margin", "norm", "mean"),
     "unknown --output 'margin'; choose from: prob, logit, loss"),
])
def test_every_place_checks_in_the_one_shape(call, text):
    assert message(call).startswith(text)
