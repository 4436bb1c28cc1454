"""Jeong et al., "Observations on K-image Expansion of Image-Mixing Augmentation" (DMixup, DCutMix).

Published values: paper_values/dcutmix.yaml.
"""

from __future__ import annotations

from msda_cli import metric_names as names
from msda_cli.report.match import Approx, Contains, Default, Gt, OneOf, Present
from msda_cli.report.spec import TOP1_ERR, TOP5_ERR, Header, MetricSpec, Paper, TableSpec, archs, grouped, methods
from msda_cli.report.tables.protocols import CUTMIX_IMAGENET, UNIFIED_CIFAR, VERMA_LAYERS

PAPER = Paper("dcutmix", "Observations on K-image Expansion of Image-Mixing Augmentation (DCutMix)",
              short="DCutMix", aliases=("dcutmix", "k-image", "dmixup"))

PLAIN = {"mixer.smoothing": OneOf(0, None)}  # no label smoothing (Table 1 has a row of its own for it)
K3 = {"mixer.k": Default(3), "mixer.alpha": Approx(1 / 3)}  # the ImageNet setting K = 3, α = 1/3
ROBUST_TOP1 = "robust top-1 (%)"
ERRORS = (Header("Top-1 Err (%)", metric=TOP1_ERR), Header("Top-5 Err (%)", metric=TOP5_ERR))


def _k(*values: int) -> tuple[Header, ...]:
    """One row per K (3 is the methods' default)."""
    return tuple(Header(str(v), {"mixer.k": Default(v) if v == 3 else v}) for v in values)


def _robust(name: str, label: str, **params) -> MetricSpec:
    return MetricSpec(name, names.ROBUST, params=params, label=label)


PYRAMIDNET = TableSpec(
    id="dcutmix-1", source=PAPER, paper_table="1",
    caption="Comparison with other augmentation and regularization methods. Top-1 error (%) of PyramidNet "
            "on CIFAR-100 and CIFAR-10 (DMixup K = 3 / 3 / 5, DCutMix K = 5 / 5 / 3 per column, as in the paper)",
    where={},
    rows=methods(("Vanilla", "vanilla", PLAIN), ("Label Smoothing", "vanilla", {"mixer.smoothing": Gt(0)}),
                 ("Cutout", "cutout", PLAIN), ("Mixup", "mixup", PLAIN),
                 ("Manifold Mixup", "manifold-mixup", {**PLAIN, **VERMA_LAYERS}), ("CutMix", "cutmix", PLAIN),
                 ("DMixup", "dmixup", PLAIN), ("DCutMix", "dcutmix", PLAIN)),
    cols=(Header("CIFAR-100 PyramidNet-110", {"dataset": "cifar100", "arch": "pyramidnet110"}),
          Header("CIFAR-100 PyramidNet-200", {"dataset": "cifar100", "arch": "pyramidnet200"}),
          Header("CIFAR-10 PyramidNet-200", {"dataset": "cifar10", "arch": "pyramidnet200"})),
    cell_where={("DMixup", "CIFAR-100 PyramidNet-110"): {"mixer.k": Default(3)},
                ("DCutMix", "CIFAR-100 PyramidNet-110"): {"mixer.k": 5},
                ("DMixup", "CIFAR-100 PyramidNet-200"): {"mixer.k": Default(3)},
                ("DCutMix", "CIFAR-100 PyramidNet-200"): {"mixer.k": 5},
                ("DMixup", "CIFAR-10 PyramidNet-200"): {"mixer.k": 5},
                ("DCutMix", "CIFAR-10 PyramidNet-200"): {"mixer.k": Default(3)}},
    metric=TOP1_ERR, recipe_hint="DCutMix PyramidNet CIFAR recipes",
)

CIFAR100 = TableSpec(
    id="dcutmix-2", source=PAPER, paper_table="2", protocol=UNIFIED_CIFAR,
    caption="Comparison with recent image-mixing methods on CIFAR-100. Top-1 error (%); "
            "`--metric time_ratio` gives the training time relative to Vanilla",
    where={"dataset": "cifar100"},
    rows=archs(("PreActResNet18", "preactresnet18"), ("WRN16-8", "wrn16-8"), ("ResNeXt29-4-24", "resnext29-4-24")),
    cols=methods(("Vanilla", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"), ("PuzzleMix", "puzzlemix"),
                 ("DMixup", "dmixup"), ("DCutMix", "dcutmix")),
    metric=TOP1_ERR, row_names=("Model",), best="row",
    metrics={"time_ratio": MetricSpec(names.TRAIN_TIME, names.TRAIN, label="training time relative to Vanilla (x)",
                                      lower_is_better=True, ratio_to_col="Vanilla")},
    recipe_hint="DCutMix CIFAR-100 comparison recipe",
    note="The paper's Co-Mixup and StyleCutMix columns are not methods of this tool.",
)

IMAGENET = TableSpec(
    id="dcutmix-3", source=PAPER, paper_table="3", number="3 (left)", protocol=CUTMIX_IMAGENET,
    caption="ImageNet performance of DMixup, DCutMix and Saliency-DCutMix. Top-1 and top-5 error (%) of "
            "ResNet-50",
    where={"dataset": "imagenet", "arch": "resnet50"},
    rows=methods(("Baseline", "vanilla"), ("Mixup", "mixup"), ("Manifold Mixup", "manifold-mixup", VERMA_LAYERS),
                 ("CutMix", "cutmix"), ("DMixup (K = 3, α = 1/3)", "dmixup", K3),
                 ("DCutMix (K = 3, α = 1/3)", "dcutmix", K3),
                 ("Saliency-DCutMix (K = 3, α = 1/3)", "saliency-dcutmix", K3)),
    cols=ERRORS, metric=TOP1_ERR, row_names=("Model",), recipe_hint="DCutMix ImageNet ResNet-50 recipe",
)

IMAGENET_K = TableSpec(
    id="dcutmix-3b", source=PAPER, paper_table="3b", number="3 (right)", protocol=CUTMIX_IMAGENET,
    caption="Impact of K on DCutMix and Saliency-DCutMix. Top-1 and top-5 error (%) of ResNet-50 on ImageNet "
            "(α = 1)",
    where={"dataset": "imagenet", "arch": "resnet50", "mixer.alpha": Default(1)},
    rows=grouped([("DCutMix", {"method": "dcutmix"})], _k(3, 4, 5, 7, 9))
    + grouped([("Saliency-DCutMix", {"method": "saliency-dcutmix"})], _k(3, 4, 5, 7)),
    cols=ERRORS, metric=TOP1_ERR, row_names=("Method", "K"),
    recipe_hint="DCutMix ImageNet ResNet-50 recipe with --set mixer.k=K",
)

OOD = TableSpec(
    id="dcutmix-4", source=PAPER, paper_table="4", protocol=CUTMIX_IMAGENET,
    caption="Out-of-distribution detection on ImageNet-O. AUPR (%) of ResNet-50 (score: -max softmax)",
    where={"dataset": "imagenet", "arch": "resnet50"},
    rows=methods(("Vanilla", "vanilla"), ("Mixup", "mixup"), ("DMixup", "dmixup"), ("CutMix", "cutmix"),
                 ("DCutMix", "dcutmix"), ("Saliency-DCutMix", "saliency-dcutmix")),
    cols=(Header("ImageNet-O AUPR (%)"),),
    metric=_robust(names.OOD_AUPR, "AUPR (%)", ood_set=Contains("imagenet-o")),
    row_names=("Model",), recipe_hint="DCutMix ImageNet ResNet-50 recipe, then `msda robust RUN --ood imagenet-o`",
)

ROBUSTNESS = TableSpec(
    id="dcutmix-5", source=PAPER, paper_table="5", protocol=CUTMIX_IMAGENET,
    caption="Adversarial robustness. Top-1 robust accuracy (%) of ResNet-50 on ImageNet against attacks "
            "(white-box FGSM; gray-box PGD crafted on another seed; black-box PGD crafted on another architecture) "
            "and accuracy on ImageNet-A (200-class protocol)",
    where={"dataset": "imagenet", "arch": "resnet50"},
    rows=methods(("ResNet-50 (Baseline)", "vanilla"), ("+ CutMix", "cutmix"),
                 ("+ DCutMix (K = 3, α = 1/3)", "dcutmix", K3),
                 ("+ Saliency-DCutMix (K = 3, α = 1/3)", "saliency-dcutmix", K3)),
    cols=(Header("White-box FGSM (L∞, ε = 8)",
                 metric=_robust(names.FGSM, ROBUST_TOP1, eps=8, mode=Default("white-box"))),
          Header("Gray-box PGD (L∞, ε = 8)", metric=_robust(names.PGD, ROBUST_TOP1, eps=8, mode="gray-box")),
          Header("Black-box PGD (L∞, ε = 8)", metric=_robust(names.PGD, ROBUST_TOP1, eps=8, mode="black-box")),
          Header("ImageNet-A", metric=_robust(names.NATURAL_ADV_TOP1, "ImageNet-A top-1 (%)"))),
    metric=_robust(names.FGSM, "robust top-1 accuracy (%)"), row_names=("Model",),
    recipe_hint="DCutMix ImageNet ResNet-50 recipe, then `msda robust RUN --attack fgsm|pgd [--source RUN]`",
)

SUBSAMPLING = TableSpec(
    id="dcutmix-fig5a", source=PAPER, paper_table="fig5a",
    caption="Data subsampling. Top-1 error (%) on the full CIFAR-100 test set of DCutMix runs trained on "
            "subsets, per subsampling measure (rows) and subset ratio t (columns)",
    where={"dataset": "cifar100", "method": "dcutmix", "subset_id": Present()},
    rows=(), cols=(), dynamic_rows="subset.label", dynamic_cols="subset.ratio",
    metric=TOP1_ERR, row_names=("Measure",),
    recipe_hint="`msda subsample RUN --ratio T --measure cv|mean|std|random`, then "
                "`msda train --recipe <DCutMix CIFAR-100 recipe> --subset SUBSET_ID`",
    note="The paper prints this as a figure; its text gives one number: high-CV subsets beat random ones "
         "by 5.79 points of error at t = 0.05.",
)

TABLES = (PYRAMIDNET, CIFAR100, IMAGENET, IMAGENET_K, OOD, ROBUSTNESS, SUBSAMPLING)
