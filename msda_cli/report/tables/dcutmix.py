"""Jeong et al., "Observations on K-image Expansion of Image-Mixing Augmentation" (DMixup, DCutMix).

Published values: paper_values/dcutmix.yaml. The ImageNet tables train under the CutMix code's
protocol; their Mixup is α = 1 (the CutMix paper's row), not the unified-analysis paper's α = 0.8.
"""

from __future__ import annotations

from msda_cli import metric_names as names
from msda_cli.report.match import Contains, Default
from msda_cli.report.spec import (
    OTHER_SEED, TOP1_ERR, TOP5_ERR, FollowUp, Header, MetricSpec, Paper, Plan, RunOf, TableSpec, archs, grouped,
    robust, untrainable,
)

PAPER = Paper("dcutmix", "Observations on K-image Expansion of Image-Mixing Augmentation (DCutMix)",
              short="DCutMix")

ROBUST_TOP1 = "robust top-1 (%)"
ERRORS = (Header("Top-1 Err (%)", metric=TOP1_ERR), Header("Top-5 Err (%)", metric=TOP5_ERR))
_NOT_A_METHOD = "{} is not a method of this tool"
# The CutMix paper, source of the baseline rows, reports "averaged best performances during training", and the
# DCutMix code keeps `best_acc`: the error tables show each run's best epoch (`msda report --epoch final` too).
BEST = dict(epoch="best", epoch_note="the CutMix paper, source of the baseline rows: \"averaged best performances "
                                     "during training\"; the DCutMix code keeps best_acc")
# Table 2's baseline rows are the Co-Mixup paper's, whose README cites the last checkpoint and states nothing else
COMIXUP_FINAL = dict(epoch="final", epoch_note="the Co-Mixup paper, source of the baseline rows: its README cites "
                                               "\"The last checkpoint shows 80.19% clean test accuracy\"; the paper "
                                               "does not state it otherwise")


def _robust(name: str, label: str, **params) -> MetricSpec:
    return MetricSpec(name, names.ROBUST, params=params, label=label)


def recipe_rows(*rows) -> tuple[Header, ...]:
    """Rows from (label, recipe) or (label, recipe, extra plan part) tuples."""
    return tuple(Header(label, plan=Plan(recipe=recipe) | (extra[0] if extra else Plan()))
                 for label, recipe, *extra in rows)


# Table 1: the recipe of each (row, column), with the authors' hyperparameters per column (None: the paper
# prints no value and no recipe trains it; the column's vanilla recipe then trains the row's method)
T1_COLUMNS = ("CIFAR-100 PyramidNet-110", "CIFAR-100 PyramidNet-200", "CIFAR-10 PyramidNet-200")
T1_RECIPES = {
    "Vanilla": ("cifar100-vanilla-pyramidnet110", "cifar100-vanilla-pyramidnet200", "cifar10-vanilla-pyramidnet200"),
    "StochDepth": (None, "cifar100-stochdepth-pyramidnet200", None),
    "Label Smoothing": (None, "cifar100-label-smoothing-pyramidnet200", None),
    "Cutout": (None, "cifar100-cutout-pyramidnet200", "cifar10-cutout-pyramidnet200"),
    "DropBlock": (None, "cifar100-dropblock-pyramidnet200", None),
    "Mixup": ("cifar100-mixup-pyramidnet110", "cifar100-mixup-pyramidnet200", "cifar10-mixup-pyramidnet200"),
    "Manifold Mixup": (None, "cifar100-manifold-mixup-pyramidnet200", "cifar10-manifold-mixup-pyramidnet200"),
    "CutMix": ("cifar100-cutmix-pyramidnet110", "cifar100-cutmix-pyramidnet200", "cifar10-cutmix-pyramidnet200"),
    "DMixup": ("cifar100-dmixup", "cifar100-dmixup-pyramidnet200", "cifar10-dmixup"),
    "DCutMix": ("cifar100-dcutmix", "cifar100-dcutmix-pyramidnet200", "cifar10-dcutmix"),
}
# Manifold Mixup α = 1, the CutMix paper's ("We have tried α = 0.5 and 1.0 for Mixup and Manifold Mixup and have
# chosen 1.0"), as in every recipe of the table
T1_WITHOUT_RECIPE = {"Label Smoothing": Plan(sets=("mixer.smoothing=0.1",)), "Cutout": Plan(method="cutout"),
                     "Manifold Mixup": Plan(method="manifold-mixup", sets=("mixer.alpha=1.0",)),
                     # the PyramidNet-200 recipes' regularizers (stochastic depth p_L 0.5; DropBlock 0.9, block 3)
                     "StochDepth": Plan(sets=("model.survival=0.5",)),
                     "DropBlock": Plan(sets=("model.dropblock_keep=0.9", "model.dropblock_size=3"))}
T1_ROWS = ("Vanilla", "StochDepth", "Label Smoothing", "Cutout", "DropBlock", "Mixup", "Manifold Mixup", "CutMix",
           "StyleMix", "StyleCutMix", "DMixup", "DCutMix")  # the paper's order; two are methods this tool lacks


def _t1_plan(row: str, column: int) -> Plan:
    recipe = T1_RECIPES[row][column]
    if recipe is not None:
        return Plan(recipe=recipe)
    return Plan(recipe=T1_RECIPES["Vanilla"][column]) | T1_WITHOUT_RECIPE[row]


PYRAMIDNET = TableSpec(
    id="dcutmix-1", source=PAPER, paper_table="1",
    caption="Comparison with other augmentation and regularization methods. Top-1 error (%) of PyramidNet "
            "on CIFAR-100 and CIFAR-10 (DMixup K = 3 / 3 / 5, DCutMix K = 5 / 5 / 3 per column, as in the paper; "
            "the baselines as the CutMix paper trained them: Mixup and Manifold Mixup α = 1, Cutout 16 × 16 px, "
            "CIFAR-100 PyramidNet-200's Manifold Mixup is its \"Cutout + Manifold Mixup (α=1.0)\")",
    rows=tuple(Header(row) if row in T1_RECIPES else untrainable(row, _NOT_A_METHOD.format(row)) for row in T1_ROWS),
    cols=tuple(Header(label) for label in T1_COLUMNS),
    cell_plans={(row, label): _t1_plan(row, j) for row in T1_RECIPES for j, label in enumerate(T1_COLUMNS)},
    metric=TOP1_ERR, **BEST,
)

CIFAR100 = TableSpec(
    id="dcutmix-2", source=PAPER, paper_table="2",
    caption="Comparison with recent image-mixing methods on CIFAR-100. Top-1 error (%); "
            "`--metric time_ratio` gives the training time relative to Vanilla",
    rows=archs(("PreActResNet18", "preactresnet18"), ("WRN16-8", "wrn16-8"), ("ResNeXt29-4-24", "resnext29-4-24")),
    cols=(Header("Vanilla", plan=Plan(recipe="cifar100-vanilla")), Header("Mixup", plan=Plan(recipe="cifar100-mixup")),
          Header("CutMix", plan=Plan(recipe="cifar100-cutmix")))
    # PuzzleMix and Co-Mixup with their authors' CIFAR-100 commands (the paper copies the Co-Mixup paper's rows)
    + (Header("PuzzleMix", plan=Plan(recipe="cifar100-puzzlemix")),
       Header("Co-Mixup", plan=Plan(recipe="cifar100-comixup")),
       untrainable("StyleCutMix", _NOT_A_METHOD.format("StyleCutMix")))
    + (Header("DMixup", plan=Plan(recipe="cifar100-dmixup-preactresnet18")),
       Header("DCutMix", plan=Plan(recipe="cifar100-dcutmix-preactresnet18"))),
    metric=TOP1_ERR, row_names=("Model",), best="row", **COMIXUP_FINAL,
    metrics={"time_ratio": MetricSpec(names.TRAIN_TIME, names.TRAIN, label="training time relative to Vanilla (x)",
                                      lower_is_better=True, ratio_to_col="Vanilla")},
)

# ImageNet ResNet-50 under the CutMix code protocol: the rows of Table 3 (left), also those of Tables 4 and 5
IMAGENET_ROWS = {
    "vanilla": Plan(recipe="imagenet-vanilla"),
    "mixup": Plan(recipe="imagenet-mixup", sets=("mixer.alpha=1",)),  # the CutMix paper's Mixup row
    "manifold-mixup": Plan(recipe="imagenet-manifold-mixup"),
    "cutmix": Plan(recipe="imagenet-cutmix"),
    "dmixup": Plan(recipe="imagenet-dmixup"),  # K = 3, α = 1/3
    "dcutmix": Plan(recipe="imagenet-dcutmix"),
    "saliency-dcutmix": Plan(recipe="imagenet-saliency-dcutmix"),
}


def imagenet_rows(*pairs) -> tuple[Header, ...]:
    return tuple(Header(label, plan=IMAGENET_ROWS[method]) for label, method in pairs)


IMAGENET = TableSpec(
    id="dcutmix-3", source=PAPER, paper_table="3", number="3 (left)",
    caption="ImageNet performance of DMixup, DCutMix and Saliency-DCutMix. Top-1 and top-5 error (%) of "
            "ResNet-50",
    rows=imagenet_rows(("Baseline", "vanilla"), ("Mixup", "mixup"), ("Manifold Mixup", "manifold-mixup"),
                       ("CutMix", "cutmix"), ("DMixup (K = 3, α = 1/3)", "dmixup"),
                       ("DCutMix (K = 3, α = 1/3)", "dcutmix"),
                       ("Saliency-DCutMix (K = 3, α = 1/3)", "saliency-dcutmix")),
    cols=ERRORS, metric=TOP1_ERR, row_names=("Model",), **BEST,
)


def _k(*values: int) -> tuple[Header, ...]:
    """One row per K, each with α = 1."""
    return tuple(Header(str(v), plan=Plan(sets=("mixer.alpha=1", f"mixer.k={v}"))) for v in values)


IMAGENET_K = TableSpec(
    id="dcutmix-3b", source=PAPER, paper_table="3b", number="3 (right)",
    caption="Impact of K on DCutMix and Saliency-DCutMix. Top-1 and top-5 error (%) of ResNet-50 on ImageNet "
            "(α = 1)",
    rows=grouped([("DCutMix", IMAGENET_ROWS["dcutmix"])], _k(3, 4, 5, 7, 9))
    + grouped([("Saliency-DCutMix", IMAGENET_ROWS["saliency-dcutmix"])], _k(3, 4, 5, 7)),
    cols=ERRORS, metric=TOP1_ERR, row_names=("Method", "K"), **BEST,
)

# "we measured the area under the precision-recall curve (AUPR) on the ImageNet-O dataset [47]": Hendrycks et al.'s
# protocol (their 200 classes' validation images against ImageNet-O, logits restricted to those classes), whose
# chance rate (16.7 %) the published 15.85-16.96 sit at
OOD = TableSpec(
    id="dcutmix-4", source=PAPER, paper_table="4",
    plan=Plan(followups=(robust(ood="imagenet-o", ood_protocol=names.OOD_HENDRYCKS),)),
    caption="Out-of-distribution detection on ImageNet-O. AUPR (%) of ResNet-50 (score: -max softmax; Hendrycks et "
            "al.'s protocol: the ImageNet validation images of the 200 ImageNet-O classes against ImageNet-O, "
            "logits restricted to those 200 classes)",
    rows=imagenet_rows(("Vanilla", "vanilla"), ("Mixup", "mixup"), ("DMixup", "dmixup"), ("CutMix", "cutmix"),
                       ("DCutMix", "dcutmix"), ("Saliency-DCutMix", "saliency-dcutmix")),
    cols=(Header("ImageNet-O AUPR (%)"),),
    metric=_robust(names.OOD_AUPR, "AUPR (%)", ood_set=Contains("imagenet-o"), protocol=names.OOD_HENDRYCKS),
    row_names=("Model",),
)

# "For this case, we set a substitute model (i.e. ResNet152) and made adversarial examples by attacking it."
# CHOSEN: the substitute trains as the Baseline row does (the CutMix code protocol, no mixing), seed by seed; the
# paper gives neither its training nor whether it is a public model. Gray- and black-box PGD: "PGD l∞ attack [50]
# with epsilon ε = 8"; CHOSEN (not printed): 10 steps of 2, one random start (the PGD defaults of METHODS.md).
SUBSTITUTE = Plan(recipe="imagenet-vanilla", arch="resnet152")

ROBUSTNESS = TableSpec(
    id="dcutmix-5", source=PAPER, paper_table="5",
    caption="Adversarial robustness. Top-1 robust accuracy (%) of ResNet-50 on ImageNet against attacks "
            "(white-box FGSM; gray-box PGD crafted on another seed; black-box PGD crafted on a ResNet-152 trained "
            "as the baseline, of the same seed; PGD: 10 steps of 2, one random start) "
            "and accuracy on ImageNet-A (200-class protocol)",
    rows=imagenet_rows(("ResNet-50 (Baseline)", "vanilla"), ("+ CutMix", "cutmix"),
                       ("+ DCutMix (K = 3, α = 1/3)", "dcutmix"),
                       ("+ Saliency-DCutMix (K = 3, α = 1/3)", "saliency-dcutmix")),
    cols=(Header("White-box FGSM (L∞, ε = 8)", plan=Plan(followups=(robust(attack="fgsm", eps=8),)),
                 metric=_robust(names.FGSM, ROBUST_TOP1, eps=8, mode=Default("white-box"))),
          Header("Gray-box PGD (L∞, ε = 8)",
                 plan=Plan(followups=(robust(attack="pgd", eps=8, steps=10, step_size=2, source=OTHER_SEED),)),
                 metric=_robust(names.PGD, ROBUST_TOP1, eps=8, mode="gray-box")),
          Header("Black-box PGD (L∞, ε = 8)",
                 plan=Plan(followups=(robust(attack="pgd", eps=8, steps=10, step_size=2, source=RunOf(SUBSTITUTE)),)),
                 metric=_robust(names.PGD, ROBUST_TOP1, eps=8, mode="black-box")),
          Header("ImageNet-A", plan=Plan(followups=(robust(natural_adversarial="imagenet-a"),)),
                 metric=_robust(names.NATURAL_ADV_TOP1, "ImageNet-A top-1 (%)"))),
    metric=_robust(names.FGSM, "robust top-1 accuracy (%)"), row_names=("Model",),
)

SUBSAMPLING = TableSpec(
    id="dcutmix-fig5a", source=PAPER, paper_table="fig5a",
    # PyramidNet-110 DCutMix (the authors' CIFAR-100 recipe); CHOSEN: the measures and ratios (the figure's axis
    # is not printed; its text names t = 0.05)
    plan=Plan(recipe="cifar100-dcutmix",
              subsets=FollowUp("subsample", (("measure", "cv,mean,std,random"), ("ratio", "0.05,0.1,0.2")))),
    caption="Data subsampling. Top-1 error (%) on the full CIFAR-100 test set of DCutMix runs trained on "
            "subsets, per subsampling measure (rows) and subset ratio t (columns)",
    rows=(), cols=(), dynamic_rows="subset.label", dynamic_cols="subset.ratio",
    metric=TOP1_ERR, row_names=("Measure",), **BEST,
    note="The paper prints this as a figure; its text gives one number: high-CV subsets beat random ones "
         "by 5.79 points of error at t = 0.05.",
)

TABLES = (PYRAMIDNET, CIFAR100, IMAGENET, IMAGENET_K, OOD, ROBUSTNESS, SUBSAMPLING)
