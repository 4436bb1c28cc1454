"""Park, Yun, Chun et al., "A Unified Analysis of Mixed Sample Data Augmentation" (HMix/GMix).

Published values: paper_values/hmix-gmix.yaml. Each method's recipe holds the paper's
hyperparameters (CIFAR-100: HMix r = 0.5, GMix α = 0.5; ImageNet: Mixup α = 0.8, HMix r = 0.75).
PuzzleMix (CIFAR-100 Table 2), whose settings the paper does not print, trains with the authors'
CIFAR-100 command (recipes/cifar100-puzzlemix.yaml).
"""

from __future__ import annotations

from msda_cli.report.spec import TOP1_ACC, Header, Paper, Plan, TableSpec, archs, methods

# The paper is silent on label smoothing; its code, a fork of timm's Mixup, defaults to 0.1. The recipes train
# without (every plan's mixer.smoothing is 0), and the captions say so.
NO_SMOOTHING = (" No label smoothing (the paper is silent; its code, a fork of timm's Mixup, defaults to 0.1)."
                " `--set mixer.smoothing=0.1` trains with it.")

PAPER = Paper("hmix-gmix", "A Unified Analysis of Mixed Sample Data Augmentation (HMix/GMix)",
              short="Unified analysis (HMix/GMix)")

CROP_SCENARIOS = TableSpec(
    id="1", source=PAPER, paper_table="1",
    caption="Different tasks need different MSDA strategies. Validation top-1 accuracy (%) of Mixup and "
            "CutMix on ImageNet-100 under two crop scenarios (large crop: 80-100 % of the area, small crop: "
            "25-40 %, resized to 64x64); HMix and GMix as in the paper's Appendix G (no values printed)."
            + NO_SMOOTHING,
    rows=(Header("Scenario 1: Large crop", plan=Plan(recipe="imagenet100-large-crop-{method}")),
          Header("Scenario 2: Small crop", plan=Plan(recipe="imagenet100-small-crop-{method}"))),
    cols=methods(("Mixup", "mixup"), ("CutMix", "cutmix"))
    + (Header("Δ (CutMix - Mixup)", derived=("CutMix", "Mixup")),)
    + methods(("HMix", "hmix"), ("GMix", "gmix")),
    metric=TOP1_ACC, row_names=("Scenario",), best="row",
)

CIFAR100 = TableSpec(
    id="2", source=PAPER, paper_table="2", plan=Plan(recipe="cifar100-{method}"),
    caption="CIFAR-100 classification. Top-1 accuracy (%) of MSDA methods on several architectures "
            "(HMix with r = 0.5)." + NO_SMOOTHING,
    rows=methods(("Vanilla (no MSDA)", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"),
                 ("PuzzleMix", "puzzlemix"), ("Stochastic Mixup & CutMix", "mixup-cutmix"), ("HMix", "hmix"),
                 ("GMix", "gmix")),
    cols=archs(("RN56", "resnet56"), ("WRN28-2", "wrn28-2"), ("PreActRN18", "preactresnet18"),
               ("PreActRN34", "preactresnet34"), ("PreActRN50", "preactresnet50")),
    metric=TOP1_ACC,
)

IMAGENET = TableSpec(
    id="3", source=PAPER, paper_table="3", plan=Plan(recipe="imagenet-{method}"),
    caption="ImageNet-1K classification. Top-1 accuracy (%) of MSDA methods on ResNet-50 (Mixup with α = 0.8, "
            "HMix with r = 0.75)." + NO_SMOOTHING,
    rows=methods(("Vanilla (no MSDA)", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"),
                 ("Stochastic Mixup & CutMix", "mixup-cutmix"), ("HMix", "hmix"), ("GMix", "gmix")),
    cols=(Header("Top-1 accuracy"),), metric=TOP1_ACC,
)

TABLES = (CROP_SCENARIOS, CIFAR100, IMAGENET)
