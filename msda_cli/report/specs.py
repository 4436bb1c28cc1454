"""The papers' comparison tables, declared as data.

A table is a grid of headers. Each row and column header carries a run filter (`where`:
run columns such as `method`/`arch`/`dataset`, or dotted keys into the resolved config such
as `mixer.k`, `data.options.crop`), and may override the metric (e.g. Top-1 / Top-5
columns, or one attack per column). A cell holds the finished runs that pass the table's,
its row's, its column's (and any cell-specific) filters, one value per run.

Metric names and parameter keys written by `msda robust` are the constants below, so a
rename there is one edit here. Runs record only the mixer hyperparameters their recipe set,
so a filter on a hyperparameter at its method's default (HMix r = 0.5, DCutMix/DMixup k = 3,
α = 1) is `Default(v)`: the value, or not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from msda_cli.report.match import Approx, Contains, Default, Gt, OneOf, Present

# ----- names as the tool stores them ---------------------------------------------------
FGSM, PGD = "fgsm", "pgd"  # kind robust, params: attack, eps, steps, step_size, mode, source_run
OOD_AUPR, OOD_AUROC = "ood_aupr", "ood_auroc"  # params: ood_set
NATURAL_ADV_TOP1 = "natural_adv_top1"  # ImageNet-A
DEFORM_TOP1 = "deform_top1"  # params: deformation
CORRUPTION_TOP1 = "corruption_top1"
TRAIN_TIME = "train_time_s"  # kind train, epoch null
# MixupE Table 7's "ERM + additional loss": the MixupE loss term without mixing.
ERM_PLUS_LOSS = {"method": "mixupe", "mixer.erm": True}
NOT_ERM_PLUS_LOSS = {"mixer.erm": OneOf(False, None)}
NO_SMOOTHING = {"mixer.smoothing": OneOf(0, None)}
# Verma et al.'s layer set k ∈ {0, 1, 2}; runs stored before `layers` existed mixed elsewhere
VERMA_LAYERS = {"mixer.layers": 2}

# Training protocols the papers state (the recipes follow them): runs of another protocol on the
# same data set and architecture (a MixupE PreActResNet50 run in the HMix table) stay out.
UNIFIED_CIFAR = {"epochs": 300, "optim.lr": 0.2}  # HMix/GMix Table 2, DCutMix Table 2 (Co-Mixup protocol)
CUTMIX_IMAGENET = {"epochs": 300, "optim.lr": 0.1}  # HMix/GMix Table 3, DCutMix Tables 3-5
MIXUPE_IMAGES = {"epochs": 200, "optim.lr": 0.1}  # MixupE Tables 1, 2, 7
MIXUPE_IMAGENET = {"batch_size": 4096}  # MixupE Table 3 (100K steps at batch 4096)
MIXUPE_DEFORM = {"epochs": 400}  # MixupE Table 8 (PreActResNet18 trained 400 epochs)

METHOD_LABELS = {
    "vanilla": "Vanilla", "mixup": "Mixup", "cutmix": "CutMix", "mixup-cutmix": "Stochastic Mixup & CutMix",
    "hmix": "HMix", "gmix": "GMix", "mixupe": "MixupE", "dmixup": "DMixup", "dcutmix": "DCutMix",
    "saliency-dcutmix": "Saliency-DCutMix", "cutout": "Cutout", "manifold-mixup": "Manifold Mixup",
    "resizemix": "ResizeMix", "fmix": "FMix", "saliencymix": "SaliencyMix", "puzzlemix": "PuzzleMix",
}
ARCH_LABELS = {
    "resnet56": "RN56", "wrn28-2": "WRN28-2", "wrn28-8": "WRN28-8", "wrn28-10": "WRN28-10", "wrn16-8": "WRN16-8",
    "preactresnet18": "PreActRN18", "preactresnet34": "PreActRN34", "preactresnet50": "PreActRN50",
    "preactresnet101": "PreActRN101", "pyramidnet110": "PyramidNet-110", "pyramidnet200": "PyramidNet-200",
    "resnext29-4-24": "ResNeXt29-4-24", "resnet50": "ResNet-50", "mlp": "MLP",
}
DATASET_LABELS = {
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN", "tiny-imagenet": "Tiny-ImageNet",
    "imagenet": "ImageNet", "imagenet100": "ImageNet-100", "abalone": "Abalone", "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST", "digits": "Digits",
}
MEASURE_LABELS = {"cv": "CV", "mean": "Mean", "std": "Std", "random": "Random"}
VALUE_LABELS = {"method": METHOD_LABELS, "arch": ARCH_LABELS, "dataset": DATASET_LABELS}
KEY_LABELS = {"method": "Method", "arch": "Architecture", "dataset": "Dataset", "seed": "Seed",
              "recipe": "Recipe", "subset.label": "Measure", "subset.ratio": "Subset ratio t"}

PAPERS = {
    "hmix-gmix": "A Unified Analysis of Mixed Sample Data Augmentation (HMix/GMix)",
    "mixupe": "MixupE: Understanding and Improving Mixup from Directional Derivative Perspective",
    "dcutmix": "Observations on K-image Expansion of Image-Mixing Augmentation (DCutMix)",
}


@dataclass(frozen=True)
class MetricSpec:
    """One stored metric (kind + name + parameter filter) and how to show it."""

    name: str
    kind: str | None = "eval"
    params: dict[str, Any] = field(default_factory=dict)
    transform: str = "value"  # "value" | "error" (100 - value)
    label: str = ""
    lower_is_better: bool = False
    ratio_to_col: str | None = None  # divide by the mean of this column in the same row

    def key(self) -> tuple:
        return (self.name, self.kind, tuple(sorted((k, repr(v)) for k, v in self.params.items())), self.transform)


def acc(name: str = "top1", label: str = "top-1 accuracy (%)") -> MetricSpec:
    return MetricSpec(name, "eval", label=label)


def err(name: str = "top1", label: str = "top-1 error (%)") -> MetricSpec:
    return MetricSpec(name, "eval", transform="error", label=label, lower_is_better=True)


TOP1, TOP5, ERR1, ERR5 = acc(), acc("top5", "top-5 accuracy (%)"), err(), err("top5", "top-5 error (%)")


@dataclass(frozen=True)
class Header:
    """A row or column: its label (as the paper prints it), run filter, optional metric."""

    label: str
    where: dict[str, Any] = field(default_factory=dict)
    metric: MetricSpec | None = None
    group: str | None = None  # outer row label (e.g. the model in "model x method" tables)
    paper: str | None = None  # the name in paper_values/*.yaml when it differs from label
    derived: tuple[str, str] | None = None  # column = mean(col a) - mean(col b)

    @property
    def path(self) -> tuple[str, ...]:
        return (self.group, self.label) if self.group is not None else (self.label,)

    @property
    def paper_path(self) -> tuple[str, ...]:
        name = self.paper or self.label
        return (self.group, name) if self.group is not None else (name,)


@dataclass(frozen=True)
class TableSpec:
    id: str
    paper_key: str  # paper_values/<paper_key>.yaml
    paper_table: str  # table id inside that file
    caption: str
    where: dict[str, Any]
    rows: tuple[Header, ...]
    cols: tuple[Header, ...]
    metric: MetricSpec
    row_names: tuple[str, ...] = ("Method",)
    best: str | None = "column"  # "column" | "row" | None
    metrics: dict[str, MetricSpec] = field(default_factory=dict)  # alternatives: --metric NAME
    cell_where: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (row label, col label)
    dynamic_rows: str | None = None  # rows = distinct values of this key (when `rows` is empty)
    dynamic_cols: str | None = None
    recipe_hint: str = ""
    note: str = ""
    decimals: int = 2
    number: str | None = None  # the table's number as the title prints it (default: paper_table)
    # the paper's training protocol (epochs, lr, batch size) where two papers train the same data
    # set and architecture differently; `--where KEY=VALUE` on one of these keys replaces it
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def paper(self) -> str:
        return PAPERS[self.paper_key]

    @property
    def title(self) -> str:
        short = {"hmix-gmix": "Unified analysis (HMix/GMix)", "mixupe": "MixupE", "dcutmix": "DCutMix"}[self.paper_key]
        t = self.number or self.paper_table
        kind = "Figure" if t.startswith("fig") else "Table"
        return f"{short} {kind} {t.removeprefix('fig')}: {self.caption.split('.')[0]}"

    def cell_filter(self, row: Header, col: Header) -> dict[str, Any]:
        """All a run must match to count in cell (row, col): table, protocol, row, column and cell filters."""
        return {**self.where, **self.protocol, **row.where, **col.where,
                **self.cell_where.get((row.label, col.label), {})}


# ----- helpers -----------------------------------------------------------------------
def methods(*pairs) -> tuple[Header, ...]:
    """Headers from (label, method) or (label, method, extra-where) tuples."""
    out = []
    for p in pairs:
        label, method, extra = (tuple(p) + ({},))[:3]
        out.append(Header(label, {"method": method, **extra}))
    return tuple(out)


def archs(*pairs) -> tuple[Header, ...]:
    return tuple(Header(label, {"arch": arch}) for label, arch in pairs)


def grouped(groups, inner) -> tuple[Header, ...]:
    """Two-level rows: every (group label, group where) x inner header."""
    return tuple(Header(h.label, {**gw, **h.where}, group=g, paper=h.paper, metric=h.metric)
                 for g, gw in groups for h in inner)


def _tables() -> list[TableSpec]:
    T: list[TableSpec] = []

    # ===== Unified analysis (HMix / GMix) ==========================================
    T.append(TableSpec(
        id="1", paper_key="hmix-gmix", paper_table="1",
        caption="Different tasks need different MSDA strategies. Validation top-1 accuracy (%) of Mixup and "
                "CutMix on ImageNet-100 under two crop scenarios (large crop: 80-100 % of the area, small crop: "
                "25-40 %, resized to 64x64); HMix and GMix as in the paper's Appendix G (no values printed)",
        where={"dataset": "imagenet100"},
        rows=(Header("Scenario 1: Large crop", {"data.options.crop": "large"}),
              Header("Scenario 2: Small crop", {"data.options.crop": "small"})),
        cols=methods(("Mixup", "mixup"), ("CutMix", "cutmix"))
        + (Header("Δ (CutMix - Mixup)", derived=("CutMix", "Mixup")),)
        + methods(("HMix", "hmix"), ("GMix", "gmix")),
        metric=TOP1, row_names=("Scenario",), best="row", recipe_hint="imagenet100 crop-scenario recipe "
        "(data.options.crop=large|small)",
    ))
    hmix_rows_c100 = methods(
        ("Vanilla (no MSDA)", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"), ("PuzzleMix", "puzzlemix"),
        ("Stochastic Mixup & CutMix", "mixup-cutmix"), ("HMix", "hmix", {"mixer.r": Default(0.5)}), ("GMix", "gmix"))
    T.append(TableSpec(
        id="2", paper_key="hmix-gmix", paper_table="2", protocol=UNIFIED_CIFAR,
        caption="CIFAR-100 classification. Top-1 accuracy (%) of MSDA methods on several architectures "
                "(HMix with r = 0.5)",
        where={"dataset": "cifar100"}, rows=hmix_rows_c100,
        cols=archs(("RN56", "resnet56"), ("WRN28-2", "wrn28-2"), ("PreActRN18", "preactresnet18"),
                   ("PreActRN34", "preactresnet34"), ("PreActRN50", "preactresnet50")),
        metric=TOP1, recipe_hint="CIFAR-100 recipe of the unified-analysis paper",
    ))
    T.append(TableSpec(
        id="3", paper_key="hmix-gmix", paper_table="3", protocol=CUTMIX_IMAGENET,
        caption="ImageNet-1K classification. Top-1 accuracy (%) of MSDA methods on ResNet-50 (HMix with r = 0.75)",
        where={"dataset": "imagenet", "arch": "resnet50"},
        rows=methods(("Vanilla (no MSDA)", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"),
                     ("Stochastic Mixup & CutMix", "mixup-cutmix"), ("HMix", "hmix", {"mixer.r": 0.75}),
                     ("GMix", "gmix")),
        cols=(Header("Top-1 accuracy"),), metric=TOP1, recipe_hint="ImageNet ResNet-50 recipe",
    ))

    # ===== MixupE ====================================================================
    erm_mixup_mixupe = methods(("ERM", "vanilla"), ("Mixup", "mixup"), ("MixupE", "mixupe", NOT_ERM_PLUS_LOSS))
    big_archs = archs(("PreActResNet50", "preactresnet50"), ("PreActResNet101", "preactresnet101"),
                      ("Wide-Resnet-28-10", "wrn28-10"))
    for tid, ds, name in (("1a", "cifar10", "CIFAR-10"), ("1b", "cifar100", "CIFAR-100"), ("2a", "svhn", "SVHN")):
        T.append(TableSpec(
            id=f"mixupe-{tid}", paper_key="mixupe", paper_table=tid, protocol=MIXUPE_IMAGES,
            caption=f"Classification error on {name}. Test error (%)",
            where={"dataset": ds}, rows=erm_mixup_mixupe, cols=big_archs, metric=ERR1,
            recipe_hint=f"MixupE {name} recipe",
        ))
    T.append(TableSpec(
        id="mixupe-2b", paper_key="mixupe", paper_table="2b", protocol=MIXUPE_IMAGES,
        caption="Classification accuracy on Tiny-ImageNet. Top-1 and top-5 accuracy (%)",
        where={"dataset": "tiny-imagenet"},
        rows=grouped([("PreActResNet18", {"arch": "preactresnet18"}), ("PreActResNet34", {"arch": "preactresnet34"}),
                      ("PreActResNet50", {"arch": "preactresnet50"})], erm_mixup_mixupe),
        cols=(Header("top-1", metric=TOP1), Header("top-5", metric=TOP5)),
        metric=TOP1, row_names=("Model", "Method"), recipe_hint="MixupE Tiny-ImageNet recipe",
    ))
    T.append(TableSpec(
        id="mixupe-3", paper_key="mixupe", paper_table="3", protocol=MIXUPE_IMAGENET,
        caption="ImageNet accuracy. Top-1 and top-5 accuracy (%) of ResNet-50 (the paper's ViT-B/16 and "
                "CoAtNet-0 rows are not architectures of this tool)",
        where={"dataset": "imagenet"},
        rows=grouped([("ResNet-50", {"arch": "resnet50"})],
                     methods(("None", "vanilla"), ("MixUp", "mixup"), ("MixupE", "mixupe", NOT_ERM_PLUS_LOSS))),
        cols=(Header("Top-1", metric=TOP1), Header("Top-5", metric=TOP5)),
        metric=TOP1, row_names=("Models", "MixUp Type"), recipe_hint="ImageNet ResNet-50 recipe",
    ))
    tabular = [("Arrhythmia", "arrhythmia"), ("Letter", "letter"), ("Balance-scale", "balance-scale"),
               ("Mfeat-factors", "mfeat-factors"), ("Mfeat-fourier", "mfeat-fourier"),
               ("Mfeat-karhunen", "mfeat-karhunen"), ("Mfeat-morph", "mfeat-morphological"),
               ("Mfeat-zernike", "mfeat-zernike"), ("CMC", "cmc"), ("Optdigits", "optdigits"),
               ("Pendigits", "pendigits"), ("Iris", "iris"), ("Mnist_784", "mnist"), ("Abalone", "abalone"),
               ("Volkert", "volkert")]
    T.append(TableSpec(
        id="mixupe-4", paper_key="mixupe", paper_table="4",
        caption="Tabular data sets. Classification test error (%) on UCI data sets (MLP with two hidden layers of 128)",
        where={"arch": "mlp"}, rows=tuple(Header(label, {"dataset": ds}) for label, ds in tabular),
        cols=erm_mixup_mixupe, metric=ERR1, row_names=("Dataset",), best="row",
        recipe_hint="MixupE tabular recipe (arch mlp)",
    ))
    T.append(TableSpec(
        id="mixupe-7", paper_key="mixupe", paper_table="7", protocol=MIXUPE_IMAGES,
        caption="Ablation of the additional loss term. Test error (%) on CIFAR-100 with PreActResNet50 (the term of Equation 7)",
        where={"dataset": "cifar100", "arch": "preactresnet50"},
        rows=(Header("ERM", {"method": "vanilla"}), Header("Mixup", {"method": "mixup"}),
              Header("ERM+additional loss", dict(ERM_PLUS_LOSS)),
              Header("Mixup+additional loss (MixupE)", {"method": "mixupe", **NOT_ERM_PLUS_LOSS})),
        cols=(Header("Test Error"),), metric=ERR1, recipe_hint="MixupE CIFAR-100 recipe",
        note="ERM+additional loss = method mixupe with mixer.erm=true.",
    ))
    deformations = [("Rotation U(-20, 20)", "rotate20"), ("Rotation U(-40, 40)", "rotate40"),
                    ("Shearing U(-28.6, 28.6)", "shear28.6"), ("Shearing U(-57.3, 57.3)", "shear57.3"),
                    ("Zoom In (60% rescale)", "zoomin60"), ("Zoom In (80% rescale)", "zoomin80"),
                    ("Zoom Out (120% rescale)", "zoomout120"), ("Zoom Out (140% rescale)", "zoomout140")]
    deform = MetricSpec(DEFORM_TOP1, "robust", label="test accuracy (%) on deformed test sets")
    T.append(TableSpec(
        id="mixupe-8", paper_key="mixupe", paper_table="8", protocol=MIXUPE_DEFORM,
        caption="Generalization to novel deformations. Test accuracy (%) on deformed CIFAR-100 test sets "
                "(PreActResNet18 trained on normal CIFAR-100)",
        where={"dataset": "cifar100", "arch": "preactresnet18"},
        rows=tuple(Header(label, metric=replace(deform, params={"deformation": d})) for label, d in deformations),
        cols=(Header("Mixup (α = 1)", {"method": "mixup", "mixer.alpha": Default(1)}),
              Header("Mixup (α = 2)", {"method": "mixup", "mixer.alpha": 2}),
              Header("Manifold Mixup (α = 2)", {"method": "manifold-mixup", "mixer.alpha": 2, **VERMA_LAYERS}),
              Header("MixupE (α = 1)", {"method": "mixupe", "mixer.alpha": Default(1), **NOT_ERM_PLUS_LOSS},
                     paper="Ours (α = 1)")),
        metric=deform, row_names=("Test Set Deformation",), best="row",
        recipe_hint="MixupE CIFAR-100 PreActResNet18 recipe, then `msda robust RUN --deform`",
    ))

    # ===== DCutMix (K-image) =========================================================
    plain = NO_SMOOTHING
    T.append(TableSpec(
        id="dcutmix-1", paper_key="dcutmix", paper_table="1",
        caption="Comparison with other augmentation and regularization methods. Top-1 error (%) of PyramidNet "
                "on CIFAR-100 and CIFAR-10 (DMixup K = 3 / 3 / 5, DCutMix K = 5 / 5 / 3 per column, as in the paper)",
        where={},
        rows=methods(("Vanilla", "vanilla", plain), ("Label Smoothing", "vanilla", {"mixer.smoothing": Gt(0)}),
                     ("Cutout", "cutout", plain), ("Mixup", "mixup", plain),
                     ("Manifold Mixup", "manifold-mixup", {**plain, **VERMA_LAYERS}), ("CutMix", "cutmix", plain),
                     ("DMixup", "dmixup", plain), ("DCutMix", "dcutmix", plain)),
        cols=(Header("CIFAR-100 PyramidNet-110", {"dataset": "cifar100", "arch": "pyramidnet110"}),
              Header("CIFAR-100 PyramidNet-200", {"dataset": "cifar100", "arch": "pyramidnet200"}),
              Header("CIFAR-10 PyramidNet-200", {"dataset": "cifar10", "arch": "pyramidnet200"})),
        cell_where={("DMixup", "CIFAR-100 PyramidNet-110"): {"mixer.k": Default(3)},
                    ("DCutMix", "CIFAR-100 PyramidNet-110"): {"mixer.k": 5},
                    ("DMixup", "CIFAR-100 PyramidNet-200"): {"mixer.k": Default(3)},
                    ("DCutMix", "CIFAR-100 PyramidNet-200"): {"mixer.k": 5},
                    ("DMixup", "CIFAR-10 PyramidNet-200"): {"mixer.k": 5},
                    ("DCutMix", "CIFAR-10 PyramidNet-200"): {"mixer.k": Default(3)}},
        metric=ERR1, recipe_hint="DCutMix PyramidNet CIFAR recipes",
    ))
    T.append(TableSpec(
        id="dcutmix-2", paper_key="dcutmix", paper_table="2", protocol=UNIFIED_CIFAR,
        caption="Comparison with recent image-mixing methods on CIFAR-100. Top-1 error (%); "
                "`--metric time_ratio` gives the training time relative to Vanilla",
        where={"dataset": "cifar100"},
        rows=archs(("PreActResNet18", "preactresnet18"), ("WRN16-8", "wrn16-8"), ("ResNeXt29-4-24", "resnext29-4-24")),
        cols=methods(("Vanilla", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix"), ("PuzzleMix", "puzzlemix"),
                     ("DMixup", "dmixup"), ("DCutMix", "dcutmix")),
        metric=ERR1, row_names=("Model",), best="row",
        metrics={"time_ratio": MetricSpec(TRAIN_TIME, "train", label="training time relative to Vanilla (x)",
                                          lower_is_better=True, ratio_to_col="Vanilla")},
        recipe_hint="DCutMix CIFAR-100 comparison recipe",
        note="The paper's Co-Mixup and StyleCutMix columns are not methods of this tool.",
    ))
    k3 = {"mixer.k": Default(3), "mixer.alpha": Approx(1 / 3)}
    T.append(TableSpec(
        id="dcutmix-3", paper_key="dcutmix", paper_table="3", number="3 (left)", protocol=CUTMIX_IMAGENET,
        caption="ImageNet performance of DMixup, DCutMix and Saliency-DCutMix. Top-1 and top-5 error (%) of "
                "ResNet-50",
        where={"dataset": "imagenet", "arch": "resnet50"},
        rows=methods(("Baseline", "vanilla"), ("Mixup", "mixup"), ("Manifold Mixup", "manifold-mixup", VERMA_LAYERS),
                     ("CutMix", "cutmix"), ("DMixup (K = 3, α = 1/3)", "dmixup", k3),
                     ("DCutMix (K = 3, α = 1/3)", "dcutmix", k3),
                     ("Saliency-DCutMix (K = 3, α = 1/3)", "saliency-dcutmix", k3)),
        cols=(Header("Top-1 Err (%)", metric=ERR1), Header("Top-5 Err (%)", metric=ERR5)),
        metric=ERR1, row_names=("Model",), recipe_hint="DCutMix ImageNet ResNet-50 recipe",
    ))
    ks = lambda *k: tuple(Header(str(v), {"mixer.k": Default(v) if v == 3 else v}) for v in k)  # noqa: E731
    T.append(TableSpec(
        id="dcutmix-3b", paper_key="dcutmix", paper_table="3b", number="3 (right)", protocol=CUTMIX_IMAGENET,
        caption="Impact of K on DCutMix and Saliency-DCutMix. Top-1 and top-5 error (%) of ResNet-50 on ImageNet "
                "(α = 1)",
        where={"dataset": "imagenet", "arch": "resnet50", "mixer.alpha": Default(1)},
        rows=grouped([("DCutMix", {"method": "dcutmix"})], ks(3, 4, 5, 7, 9))
        + grouped([("Saliency-DCutMix", {"method": "saliency-dcutmix"})], ks(3, 4, 5, 7)),
        cols=(Header("Top-1 Err (%)", metric=ERR1), Header("Top-5 Err (%)", metric=ERR5)),
        metric=ERR1, row_names=("Method", "K"), recipe_hint="DCutMix ImageNet ResNet-50 recipe with --set mixer.k=K",
    ))
    T.append(TableSpec(
        id="dcutmix-4", paper_key="dcutmix", paper_table="4", protocol=CUTMIX_IMAGENET,
        caption="Out-of-distribution detection on ImageNet-O. AUPR (%) of ResNet-50 (score: -max softmax)",
        where={"dataset": "imagenet", "arch": "resnet50"},
        rows=methods(("Vanilla", "vanilla"), ("Mixup", "mixup"), ("DMixup", "dmixup"), ("CutMix", "cutmix"),
                     ("DCutMix", "dcutmix"), ("Saliency-DCutMix", "saliency-dcutmix")),
        cols=(Header("ImageNet-O AUPR (%)"),),
        metric=MetricSpec(OOD_AUPR, "robust", params={"ood_set": Contains("imagenet-o")}, label="AUPR (%)"),
        row_names=("Model",), recipe_hint="DCutMix ImageNet ResNet-50 recipe, then `msda robust RUN --ood imagenet-o`",
    ))
    eps8 = {"eps": 8}
    T.append(TableSpec(
        id="dcutmix-5", paper_key="dcutmix", paper_table="5", protocol=CUTMIX_IMAGENET,
        caption="Adversarial robustness. Top-1 robust accuracy (%) of ResNet-50 on ImageNet against attacks (white-box FGSM; "
                "gray-box PGD crafted on another seed; black-box PGD crafted on another architecture) and "
                "accuracy on ImageNet-A (200-class protocol)",
        where={"dataset": "imagenet", "arch": "resnet50"},
        rows=methods(("ResNet-50 (Baseline)", "vanilla"), ("+ CutMix", "cutmix"),
                     ("+ DCutMix (K = 3, α = 1/3)", "dcutmix", k3),
                     ("+ Saliency-DCutMix (K = 3, α = 1/3)", "saliency-dcutmix", k3)),
        cols=(Header("White-box FGSM (L∞, ε = 8)", metric=MetricSpec(
                  FGSM, "robust", params={**eps8, "mode": Default("white-box")}, label="robust top-1 (%)")),
              Header("Gray-box PGD (L∞, ε = 8)", metric=MetricSpec(
                  PGD, "robust", params={**eps8, "mode": "gray-box"}, label="robust top-1 (%)")),
              Header("Black-box PGD (L∞, ε = 8)", metric=MetricSpec(
                  PGD, "robust", params={**eps8, "mode": "black-box"}, label="robust top-1 (%)")),
              Header("ImageNet-A", metric=MetricSpec(NATURAL_ADV_TOP1, "robust", label="ImageNet-A top-1 (%)"))),
        metric=MetricSpec(FGSM, "robust", label="robust top-1 accuracy (%)"), row_names=("Model",),
        recipe_hint="DCutMix ImageNet ResNet-50 recipe, then `msda robust RUN --attack fgsm|pgd [--source RUN]`",
    ))
    T.append(TableSpec(
        id="dcutmix-fig5a", paper_key="dcutmix", paper_table="fig5a",
        caption="Data subsampling. Top-1 error (%) on the full CIFAR-100 test set of DCutMix runs trained on "
                "subsets, per subsampling measure (rows) and subset ratio t (columns)",
        where={"dataset": "cifar100", "method": "dcutmix", "subset_id": Present()},
        rows=(), cols=(), dynamic_rows="subset.label", dynamic_cols="subset.ratio",
        metric=ERR1, row_names=("Measure",),
        recipe_hint="`msda subsample RUN --ratio T --measure cv|mean|std|random`, then "
                    "`msda train --recipe <DCutMix CIFAR-100 recipe> --subset SUBSET_ID`",
        note="The paper prints this as a figure; its text gives one number: high-CV subsets beat random ones "
             "by 5.79 points of error at t = 0.05.",
    ))
    return T


TABLES: dict[str, TableSpec] = {t.id: t for t in _tables()}


def list_tables() -> list[TableSpec]:
    """Every paper table `msda report --table ID` can print, in paper order."""
    return list(TABLES.values())
