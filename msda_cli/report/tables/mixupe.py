"""Zou, Verma et al., "MixupE: Understanding and Improving Mixup from Directional Derivative Perspective".

Published values: paper_values/mixupe.yaml.
"""

from __future__ import annotations

from dataclasses import replace

from msda_cli import metric_names as names
from msda_cli.report.spec import (
    TOP1_ACC, TOP1_ERR, TOP5_ACC, Header, MetricSpec, Paper, Plan, TableSpec, archs, grouped, methods, robust,
)

PAPER = Paper("mixupe", "MixupE: Understanding and Improving Mixup from Directional Derivative Perspective",
              short="MixupE")

BIG_ARCHS = archs(("PreActResNet50", "preactresnet50"), ("PreActResNet101", "preactresnet101"),
                  ("Wide-Resnet-28-10", "wrn28-10"))
# The paper's sensitivity sentence: 20.23 % on CIFAR-100 PreActResNet50 at η = 1e-4 (20.84 % at the
# recipe's 1e-3), the value of Table 1b's cell and of Table 7's MixupE row.
ETA_1E4 = Plan(sets=("mixer.eta=0.0001",))


def erm_mixup_mixupe(vanilla: str, mixup: str, mixupe: str) -> tuple[Header, ...]:
    """The rows ERM, Mixup and MixupE, each trained by its recipe."""
    return (Header("ERM", plan=Plan(recipe=vanilla)), Header("Mixup", plan=Plan(recipe=mixup)),
            Header("MixupE", plan=Plan(recipe=mixupe)))


def _image_error(table: str, name: str, rows: tuple[Header, ...], **spec) -> TableSpec:
    """Tables 1a, 1b, 2a: test error of ERM, Mixup and MixupE on three large architectures."""
    return TableSpec(id=f"mixupe-{table}", source=PAPER, paper_table=table,
                     caption=f"Classification error on {name}. Test error (%)", rows=rows, cols=BIG_ARCHS,
                     metric=TOP1_ERR, **spec)


CIFAR10 = _image_error("1a", "CIFAR-10", erm_mixup_mixupe("cifar10-vanilla", "cifar10-mixup", "cifar10-mixupe"))
CIFAR100 = _image_error("1b", "CIFAR-100", erm_mixup_mixupe("cifar100-vanilla-preactresnet50",
                                                            "cifar100-mixup-preactresnet50", "cifar100-mixupe"),
                        cell_plans={("MixupE", "PreActResNet50"): ETA_1E4})
SVHN = _image_error("2a", "SVHN", erm_mixup_mixupe("svhn-vanilla", "svhn-mixup", "svhn-mixupe"))

TINY_IMAGENET = TableSpec(
    id="mixupe-2b", source=PAPER, paper_table="2b",
    # the authors' stride-2 stem on 64 px images, for every architecture (`--arch` drops a recipe's model options)
    plan=Plan(sets=("model.stem_stride=2",)),
    caption="Classification accuracy on Tiny-ImageNet. Top-1 and top-5 accuracy (%)",
    rows=grouped([("PreActResNet18", Plan(arch="preactresnet18")), ("PreActResNet34", Plan(arch="preactresnet34")),
                  ("PreActResNet50", Plan(arch="preactresnet50"))],
                 erm_mixup_mixupe("tiny-imagenet-vanilla", "tiny-imagenet-mixup", "tiny-imagenet-mixupe")),
    cols=(Header("top-1", metric=TOP1_ACC), Header("top-5", metric=TOP5_ACC)),
    metric=TOP1_ACC, row_names=("Model", "Method"),
)

# ResNet-50: SGD lr 1.6, α = 0.2, η = 0.001; ViT-B/16 and CoAtNet-0: AdamW (0.9, 0.99) lr 0.001, wd 0.3 / 0.05,
# α = 0.4, η = 5e-4; all at 224 px with "a Polyak moving average with the rate of 0.999" (the EMA model's numbers)
IMAGENET = TableSpec(
    id="mixupe-3", source=PAPER, paper_table="3",
    caption="ImageNet accuracy. Top-1 and top-5 accuracy (%) (100K steps at batch 4096, 224 px; the EMA 0.999 "
            "weights; ViT-B/16 and CoAtNet-0 with AdamW, α = 0.4, η = 5e-4)",
    rows=grouped([("ResNet-50", Plan())],
                 (Header("None", plan=Plan(recipe="imagenet-vanilla-bs4096")),
                  Header("MixUp", plan=Plan(recipe="imagenet-mixup-bs4096")),
                  Header("MixupE", plan=Plan(recipe="imagenet-mixupe"))))
    + tuple(Header(label, plan=Plan(recipe=f"imagenet-{arch}-{method}"), group=group)
            for group, arch in (("ViT-B/16", "vit-b16"), ("CoAtNet-0", "coatnet-0"))
            for label, method in (("None", "vanilla"), ("MixUp", "mixup"), ("MixupE", "mixupe"))),
    cols=(Header("Top-1", metric=TOP1_ACC), Header("Top-5", metric=TOP5_ACC)),
    metric=TOP1_ACC, row_names=("Models", "MixUp Type"),
)

# (label, recipe): the recipe of each Table 4 row (with {method}: one recipe per column, else the columns' --method)
TABULAR_SETS = (("Arrhythmia", "arrhythmia"), ("Letter", "letter"), ("Balance-scale", "balance-scale"),
                ("Mfeat-factors", "mfeat-factors"), ("Mfeat-fourier", "mfeat-fourier"),
                ("Mfeat-karhunen", "mfeat-karhunen"), ("Mfeat-morph", "mfeat-morphological"),
                ("Mfeat-zernike", "mfeat-zernike"), ("CMC", "cmc"), ("Optdigits", "optdigits-{method}"),
                ("Pendigits", "pendigits"), ("Iris", "iris-{method}"), ("Mnist_784", "mnist-784"),
                ("Abalone", "abalone-{method}"), ("Volkert", "volkert"))
# "We consider the hyperparameters from the set α ∈ {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0} and
# η ∈ {0.0001, 0.001, 0.01, 0.1, 1.0} and run five seeds for each of the combinations and algorithms"
ALPHAS = "mixer.alpha=0.01,0.02,0.05,0.1,0.2,0.5,1.0,2.0,5.0"
ETAS = "mixer.eta=0.0001,0.001,0.01,0.1,1.0"
TABULAR = TableSpec(
    id="mixupe-4", source=PAPER, paper_table="4",
    caption="Tabular data sets. Classification test error (%) on UCI data sets (MLP with two hidden layers of 128)",
    rows=tuple(Header(label, plan=Plan(recipe=recipe)) for label, recipe in TABULAR_SETS),
    cols=methods(("ERM", "vanilla"), ("Mixup", "mixup", Plan(grid=(ALPHAS,))),
                 ("MixupE", "mixupe", Plan(grid=(ALPHAS, ETAS)))),
    metric=TOP1_ERR, row_names=("Dataset",), best="row",
    # "the value of (α, η) is chosen based on the best validation accuracy, corresponding to which we report
    # the test accuracy for that particular dataset"
    select_by=names.VAL_TOP1, over=("mixer.alpha", "mixer.eta"),
)

LOSS_ABLATION = TableSpec(
    id="mixupe-7", source=PAPER, paper_table="7",
    caption="Ablation of the additional loss term. Test error (%) on CIFAR-100 with PreActResNet50 "
            "(the term of Equation 7)",
    rows=(Header("ERM", plan=Plan(recipe="cifar100-vanilla-preactresnet50")),
          Header("Mixup", plan=Plan(recipe="cifar100-mixup-preactresnet50")),
          Header("ERM+additional loss", plan=Plan(recipe="cifar100-mixupe-erm")),
          Header("Mixup+additional loss (MixupE)", plan=Plan(recipe="cifar100-mixupe") | ETA_1E4)),
    cols=(Header("Test Error"),), metric=TOP1_ERR,
    note="ERM+additional loss = method mixupe with mixer.erm=true.",
)

# "We train all the models for 20 epochs using Adam optimizer with a learning rate of 0.001 and batch size of 100";
# α = 0.2 ("works best consistently for all architectures") and η = 0.01 ("works best for all the experiments"):
# the speech-{vanilla,mixup,mixupe} recipes.
SPEECH = TableSpec(
    id="mixupe-5", source=PAPER, paper_table="5", plan=Plan(recipe="speech-{method}"),
    caption="Classification test error (%) on Google Speech Commands (30 words, 160×101 spectrograms)",
    rows=archs(("LeNet", "lenet"), ("VGG-11", "vgg11"), ("VGG-13", "vgg13")),
    cols=methods(("ERM", "vanilla"), ("Mixup", "mixup"), ("MixupE", "mixupe")),
    metric=TOP1_ERR, row_names=("Architecture",), best="row",
)

# "We use the experimental settings defined in Xu et al. [2018] ... Mixup and MixupE are performed ... at the
# graph-level readout stage"; "Adam optimizer with a learning rate of 0.01, which is halved every 50 epochs", 350
# epochs; "we perform 10-fold validation, identify which epoch and hyperparameters give the best test accuracy,
# and report the algorithm's final mean and standard deviation over the ten folds" (§4.4): every cell plans the
# ten folds, averages over them (`averages`) and chooses (α, η) by mean test top-1; the epoch is each run's best
# by test top-1 (the recipes' checkpoint_keep: best). The _mixupe-graphs recipe base states what is chosen.
FOLDS = "data.options.fold=0,1,2,3,4,5,6,7,8,9"
GRAPH_SETS = (("MUTAG", "mutag"), ("NCI1", "nci1"), ("PTC", "ptc"), ("PROTEINS", "proteins"),
              ("IMDBBINARY", "imdb-binary"), ("IMDBMULTI", "imdb-multi"))
GRAPHS = TableSpec(
    id="mixupe-6", source=PAPER, paper_table="6", plan=Plan(grid=(FOLDS,)),
    caption="Graph data sets. Classification test error (%) on TUDatasets with GIN (Xu et al.'s setup), "
            "mean ± std over 10 folds",
    rows=tuple(Header(label, plan=Plan(recipe=f"{key}-{{method}}")) for label, key in GRAPH_SETS),
    cols=methods(("ERM", "vanilla"), ("Mixup", "mixup", Plan(grid=(ALPHAS,))),
                 ("MixupE", "mixupe", Plan(grid=(ALPHAS, ETAS)))),
    metric=TOP1_ERR, row_names=("Dataset",), best="row",
    select_by=names.TOP1, over=("mixer.alpha", "mixer.eta"), averages=("data.options.fold",),
    epoch="best", epoch_note="\"identify which epoch and hyperparameters give the best test accuracy\"",
)

DEFORMATIONS = (("Rotation U(-20, 20)", "rotate20"), ("Rotation U(-40, 40)", "rotate40"),
                ("Shearing U(-28.6, 28.6)", "shear28.6"), ("Shearing U(-57.3, 57.3)", "shear57.3"),
                ("Zoom In (60% rescale)", "zoomin60"), ("Zoom In (80% rescale)", "zoomin80"),
                ("Zoom Out (120% rescale)", "zoomout120"), ("Zoom Out (140% rescale)", "zoomout140"))
# "For our method, we use the PreActRes-Net18 only trained with 400 epochs instead of 1200 epochs of Manifold Mixup,
# which means fewer training epochs were used to obtain our results than other baselines reported in Verma et al."
# CHOSEN for the 1200 epochs (no schedule printed): lr x0.1 at 400 and 800, the Manifold Mixup code base's
# 1200-epoch PreActResNet-18 command (as PuzzleMix, a fork of it, publishes it: --epochs 1200 --schedule 400 800).
VERMA_1200 = Plan(sets=("epochs=1200", "schedule.milestones=[400, 800]"))
DEFORMED = MetricSpec(names.DEFORM_TOP1, names.ROBUST, label="test accuracy (%) on deformed test sets")
DEFORMATION = TableSpec(
    id="mixupe-8", source=PAPER, paper_table="8", plan=Plan(followups=(robust(deform=True),)),
    caption="Generalization to novel deformations. Test accuracy (%) on deformed CIFAR-100 test sets "
            "(PreActResNet18 trained on normal CIFAR-100: MixupE 400 epochs; the baselines 400 epochs as planned, "
            "or Verma et al.'s 1200 epochs, the paper's baselines, where a cell has no 400-epoch run: a cell holds "
            "one of the two, named below when it is the 1200)",
    rows=tuple(Header(label, metric=replace(DEFORMED, params={"deformation": d})) for label, d in DEFORMATIONS),
    cols=(Header("Mixup (α = 1)", plan=Plan(recipe="cifar100-mixup-deform"), alternative=VERMA_1200),
          Header("Mixup (α = 2)", plan=Plan(recipe="cifar100-mixup-deform", sets=("mixer.alpha=2",)),
                 alternative=VERMA_1200),
          Header("Manifold Mixup (α = 2)", plan=Plan(recipe="cifar100-manifold-mixup-deform"), alternative=VERMA_1200),
          Header("MixupE (α = 1)", plan=Plan(recipe="cifar100-mixupe-deform"), paper="Ours (α = 1)")),
    metric=DEFORMED, row_names=("Test Set Deformation",), best="row",
)

TABLES = (CIFAR10, CIFAR100, SVHN, TINY_IMAGENET, IMAGENET, TABULAR, SPEECH, GRAPHS, LOSS_ABLATION, DEFORMATION)
