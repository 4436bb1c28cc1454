"""Zou, Verma et al., "MixupE: Understanding and Improving Mixup from Directional Derivative Perspective".

Published values: paper_values/mixupe.yaml. The paper's speech table (5) is not printed: the
tool has no audio data set.
"""

from __future__ import annotations

from dataclasses import replace

from msda_cli import metric_names as names
from msda_cli.report.match import Default
from msda_cli.report.spec import (
    TOP1_ACC, TOP1_ERR, TOP5_ACC, Header, MetricSpec, Paper, TableSpec, archs, grouped, methods,
)
from msda_cli.report.tables.protocols import NOT_ERM_PLUS_LOSS, VERMA_LAYERS

PAPER = Paper("mixupe", "MixupE: Understanding and Improving Mixup from Directional Derivative Perspective",
              short="MixupE", aliases=("mixupe",))

IMAGES = {"epochs": 200, "optim.lr": 0.1}  # the protocol of Tables 1, 2 and 7
ERM_PLUS_LOSS = {"method": "mixupe", "mixer.erm": True}  # Table 7: the MixupE loss term without mixing
ERM_MIXUP_MIXUPE = methods(("ERM", "vanilla"), ("Mixup", "mixup"), ("MixupE", "mixupe", NOT_ERM_PLUS_LOSS))
BIG_ARCHS = archs(("PreActResNet50", "preactresnet50"), ("PreActResNet101", "preactresnet101"),
                  ("Wide-Resnet-28-10", "wrn28-10"))


def _image_error(table: str, dataset: str, name: str) -> TableSpec:
    """Tables 1a, 1b, 2a: test error of ERM, Mixup and MixupE on three large architectures."""
    return TableSpec(
        id=f"mixupe-{table}", source=PAPER, paper_table=table, protocol=IMAGES,
        caption=f"Classification error on {name}. Test error (%)",
        where={"dataset": dataset}, rows=ERM_MIXUP_MIXUPE, cols=BIG_ARCHS, metric=TOP1_ERR,
        recipe_hint=f"MixupE {name} recipe",
    )


TINY_IMAGENET = TableSpec(
    id="mixupe-2b", source=PAPER, paper_table="2b", protocol=IMAGES,
    caption="Classification accuracy on Tiny-ImageNet. Top-1 and top-5 accuracy (%)",
    where={"dataset": "tiny-imagenet"},
    rows=grouped([("PreActResNet18", {"arch": "preactresnet18"}), ("PreActResNet34", {"arch": "preactresnet34"}),
                  ("PreActResNet50", {"arch": "preactresnet50"})], ERM_MIXUP_MIXUPE),
    cols=(Header("top-1", metric=TOP1_ACC), Header("top-5", metric=TOP5_ACC)),
    metric=TOP1_ACC, row_names=("Model", "Method"), recipe_hint="MixupE Tiny-ImageNet recipe",
)

IMAGENET = TableSpec(
    id="mixupe-3", source=PAPER, paper_table="3", protocol={"batch_size": 4096},  # 100K steps at batch 4096
    caption="ImageNet accuracy. Top-1 and top-5 accuracy (%) of ResNet-50 (the paper's ViT-B/16 and "
            "CoAtNet-0 rows are not architectures of this tool)",
    where={"dataset": "imagenet"},
    rows=grouped([("ResNet-50", {"arch": "resnet50"})],
                 methods(("None", "vanilla"), ("MixUp", "mixup"), ("MixupE", "mixupe", NOT_ERM_PLUS_LOSS))),
    cols=(Header("Top-1", metric=TOP1_ACC), Header("Top-5", metric=TOP5_ACC)),
    metric=TOP1_ACC, row_names=("Models", "MixUp Type"), recipe_hint="ImageNet ResNet-50 recipe",
)

TABULAR_SETS = (("Arrhythmia", "arrhythmia"), ("Letter", "letter"), ("Balance-scale", "balance-scale"),
                ("Mfeat-factors", "mfeat-factors"), ("Mfeat-fourier", "mfeat-fourier"),
                ("Mfeat-karhunen", "mfeat-karhunen"), ("Mfeat-morph", "mfeat-morphological"),
                ("Mfeat-zernike", "mfeat-zernike"), ("CMC", "cmc"), ("Optdigits", "optdigits"),
                ("Pendigits", "pendigits"), ("Iris", "iris"), ("Mnist_784", "mnist"), ("Abalone", "abalone"),
                ("Volkert", "volkert"))
TABULAR = TableSpec(
    id="mixupe-4", source=PAPER, paper_table="4",
    caption="Tabular data sets. Classification test error (%) on UCI data sets (MLP with two hidden layers of 128)",
    where={"arch": "mlp"}, rows=tuple(Header(label, {"dataset": ds}) for label, ds in TABULAR_SETS),
    cols=ERM_MIXUP_MIXUPE, metric=TOP1_ERR, row_names=("Dataset",), best="row",
    recipe_hint="MixupE tabular recipe (arch mlp)",
)

LOSS_ABLATION = TableSpec(
    id="mixupe-7", source=PAPER, paper_table="7", protocol=IMAGES,
    caption="Ablation of the additional loss term. Test error (%) on CIFAR-100 with PreActResNet50 "
            "(the term of Equation 7)",
    where={"dataset": "cifar100", "arch": "preactresnet50"},
    rows=(Header("ERM", {"method": "vanilla"}), Header("Mixup", {"method": "mixup"}),
          Header("ERM+additional loss", dict(ERM_PLUS_LOSS)),
          Header("Mixup+additional loss (MixupE)", {"method": "mixupe", **NOT_ERM_PLUS_LOSS})),
    cols=(Header("Test Error"),), metric=TOP1_ERR, recipe_hint="MixupE CIFAR-100 recipe",
    note="ERM+additional loss = method mixupe with mixer.erm=true.",
)

DEFORMATIONS = (("Rotation U(-20, 20)", "rotate20"), ("Rotation U(-40, 40)", "rotate40"),
                ("Shearing U(-28.6, 28.6)", "shear28.6"), ("Shearing U(-57.3, 57.3)", "shear57.3"),
                ("Zoom In (60% rescale)", "zoomin60"), ("Zoom In (80% rescale)", "zoomin80"),
                ("Zoom Out (120% rescale)", "zoomout120"), ("Zoom Out (140% rescale)", "zoomout140"))
DEFORMED = MetricSpec(names.DEFORM_TOP1, names.ROBUST, label="test accuracy (%) on deformed test sets")
DEFORMATION = TableSpec(
    id="mixupe-8", source=PAPER, paper_table="8", protocol={"epochs": 400},  # PreActResNet18 trained 400 epochs
    caption="Generalization to novel deformations. Test accuracy (%) on deformed CIFAR-100 test sets "
            "(PreActResNet18 trained on normal CIFAR-100)",
    where={"dataset": "cifar100", "arch": "preactresnet18"},
    rows=tuple(Header(label, metric=replace(DEFORMED, params={"deformation": d})) for label, d in DEFORMATIONS),
    cols=(Header("Mixup (α = 1)", {"method": "mixup", "mixer.alpha": Default(1)}),
          Header("Mixup (α = 2)", {"method": "mixup", "mixer.alpha": 2}),
          Header("Manifold Mixup (α = 2)", {"method": "manifold-mixup", "mixer.alpha": 2, **VERMA_LAYERS}),
          Header("MixupE (α = 1)", {"method": "mixupe", "mixer.alpha": Default(1), **NOT_ERM_PLUS_LOSS},
                 paper="Ours (α = 1)")),
    metric=DEFORMED, row_names=("Test Set Deformation",), best="row",
    recipe_hint="MixupE CIFAR-100 PreActResNet18 recipe, then `msda robust RUN --deform`",
)

TABLES = (_image_error("1a", "cifar10", "CIFAR-10"), _image_error("1b", "cifar100", "CIFAR-100"),
          _image_error("2a", "svhn", "SVHN"), TINY_IMAGENET, IMAGENET, TABULAR, LOSS_ABLATION, DEFORMATION)
