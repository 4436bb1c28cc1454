"""The issue-18 recipes carry the papers' settings: MixupE Table 3 (AdamW, α = 0.4, η = 5e-4, EMA 0.999 for every
row, ResNet-50's included) and DCutMix Table 1's StochDepth and DropBlock rows, and their table cells plan them."""

from __future__ import annotations

import pytest

from msda_cli.config import read_recipe, validate
from msda_cli.report.tables import TABLES


def cfg(name: str):
    return validate(read_recipe(name), source=name)


@pytest.mark.parametrize("arch, wd", [("vit-b16", 0.3), ("coatnet-0", 0.05)])
def test_mixupe_table_3_vit_and_coatnet_recipes(arch, wd):
    for method, mixer in (("vanilla", {}), ("mixup", {"alpha": 0.4}),
                          ("mixupe", {"alpha": 0.4, "eta": 0.0005, "variant": "paper"})):
        c = cfg(f"imagenet-{arch}-{method}")
        assert (c.dataset, c.arch, c.method, c.mixer) == ("imagenet", arch, method, mixer)
        o = c.optim
        assert (o.name, o.lr, o.betas, o.weight_decay, o.eps) == ("adamw", 0.001, (0.9, 0.99), wd, 1e-8)
        assert (c.schedule.name, c.schedule.min_lr, c.epochs, c.batch_size, c.ema) == ("cosine", 1e-6, 320, 4096,
                                                                                        0.999)


def test_mixupe_resnet50_rows_average_the_weights_too():
    assert all(cfg(n).ema == 0.999 for n in ("imagenet-vanilla-bs4096", "imagenet-mixup-bs4096", "imagenet-mixupe"))


def test_mixupe_table_3_plans_vit_and_coatnet():
    rows = TABLES["mixupe-3"].rows
    assert [(r.group, r.label) for r in rows][3:] == [(g, m) for g in ("ViT-B/16", "CoAtNet-0")
                                                      for m in ("None", "MixUp", "MixupE")]
    assert [r.plan.recipe for r in rows][3:] == [f"imagenet-{a}-{m}" for a in ("vit-b16", "coatnet-0")
                                                 for m in ("vanilla", "mixup", "mixupe")]


def test_dcutmix_table_1_regularizer_rows():
    assert cfg("cifar100-stochdepth-pyramidnet200").model == {"survival": 0.5}
    assert cfg("cifar100-dropblock-pyramidnet200").model == {"dropblock_keep": 0.9, "dropblock_size": 3}
    base = cfg("cifar100-vanilla-pyramidnet200").model_dump(exclude={"name", "model"})
    for name in ("cifar100-stochdepth-pyramidnet200", "cifar100-dropblock-pyramidnet200"):
        assert cfg(name).model_dump(exclude={"name", "model"}) == base  # the vanilla protocol, the model option aside
    plans = TABLES["dcutmix-1"].cell_plans
    assert plans[("StochDepth", "CIFAR-100 PyramidNet-200")].recipe == "cifar100-stochdepth-pyramidnet200"
    assert plans[("DropBlock", "CIFAR-100 PyramidNet-200")].recipe == "cifar100-dropblock-pyramidnet200"
