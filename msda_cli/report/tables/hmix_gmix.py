"""Park, Yun, Chun et al., "A Unified Analysis of Mixed Sample Data Augmentation" (HMix/GMix).

Published values: paper_values/hmix-gmix.yaml.
"""

from __future__ import annotations

from msda_cli.report.match import Default
from msda_cli.report.spec import TOP1_ACC, Header, Paper, TableSpec, archs, methods
from msda_cli.report.tables.protocols import CUTMIX_IMAGENET, UNIFIED_CIFAR

PAPER = Paper("hmix-gmix", "A Unified Analysis of Mixed Sample Data Augmentation (HMix/GMix)",
              short="Unified analysis (HMix/GMix)", aliases=("hmix-gmix", "unified", "hmix", "gmix"))

CROP_SCENARIOS = TableSpec(
    id="1", source=PAPER, paper_table="1",
    caption="Different tasks need different MSDA strategies. Validation top-1 accuracy (%) of Mixup and "
            "CutMix on ImageNet-100 under two crop scenarios (large crop: 80-100 % of the area, small crop: "
            "25-40 %, resized to 64x64); HMix and GMix as in the paper's Appendix G (no values printed)",
    where={"dataset": "imagenet100"},
    rows=(Header("Scenario 1: Large crop", {"data.options.crop": "large"}),
          Header("Scenario 2: Small crop", {"data.options.crop": "small"})),
    cols=methods(("Mixup", "mixup"), ("CutMix", "cutmix"))
    + (Header("Δ (CutMix - Mixup)", derived=("CutMix", "Mixup")),)
    + methods(("HMix", "hmix"), ("GMix", "gmix")),
    metric=TOP1_ACC, row_names=("Scenario",), best="row",
    recipe_hint="imagenet100 crop-scenario recipe (data.options.crop=large|small)",
)

CIFAR100 = TableSpec(
    id="2", source=PAPER, paper_table="2", protocol=UNIFIED_CIFAR,
    caption="CIFAR-100 classification. Top-1 accuracy (%) of MSDA methods on several architectures "
            "(HMix with r = 0.5)",
    where={"dataset": "cifar100"},
    rows=methods(("Vanilla (no MSDA)", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"),
                 ("PuzzleMix", "puzzlemix"), ("Stochastic Mixup & CutMix", "mixup-cutmix"),
                 ("HMix", "hmix", {"mixer.r": Default(0.5)}), ("GMix", "gmix")),
    cols=archs(("RN56", "resnet56"), ("WRN28-2", "wrn28-2"), ("PreActRN18", "preactresnet18"),
               ("PreActRN34", "preactresnet34"), ("PreActRN50", "preactresnet50")),
    metric=TOP1_ACC, recipe_hint="CIFAR-100 recipe of the unified-analysis paper",
)

IMAGENET = TableSpec(
    id="3", source=PAPER, paper_table="3", protocol=CUTMIX_IMAGENET,
    caption="ImageNet-1K classification. Top-1 accuracy (%) of MSDA methods on ResNet-50 (HMix with r = 0.75)",
    where={"dataset": "imagenet", "arch": "resnet50"},
    rows=methods(("Vanilla (no MSDA)", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"),
                 ("Stochastic Mixup & CutMix", "mixup-cutmix"), ("HMix", "hmix", {"mixer.r": 0.75}),
                 ("GMix", "gmix")),
    cols=(Header("Top-1 accuracy"),), metric=TOP1_ACC, recipe_hint="ImageNet ResNet-50 recipe",
)

TABLES = (CROP_SCENARIOS, CIFAR100, IMAGENET)
