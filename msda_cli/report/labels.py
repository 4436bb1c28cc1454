"""Display labels: how the report names methods, architectures, data sets, keys and metrics.

The label dicts also give the canonical order of rows and columns in ad-hoc pivots.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from msda_cli import metric_names as names
from msda_cli.report.match import as_number, is_missing

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
METRIC_LABELS = {
    names.TOP1: "top-1 accuracy (%)", names.TOP5: "top-5 accuracy (%)", names.NLL: "test NLL", names.ECE: "ECE (%)",
    "error": "top-1 error (%)", "top1_error": "top-1 error (%)", "top5_error": "top-5 error (%)",
    names.TRAIN_TIME: "training time (s)", names.IMAGES_PER_S: "training throughput (images/s)",
}
_CANONICAL = {"method": list(METHOD_LABELS), "arch": list(ARCH_LABELS), "dataset": list(DATASET_LABELS),
              "subset.measure": list(MEASURE_LABELS)}


def key_label(key: str) -> str:
    return KEY_LABELS.get(key, key)


def value_label(key: str, value: Any) -> str:
    """A header for the value of a run key: `CutMix` for method cutmix, `t = 0.05` for a subset ratio."""
    if is_missing(value):
        return "(none)"
    labels = VALUE_LABELS.get(key)
    if labels and value in labels:
        return labels[value]
    if key == "subset.ratio":
        return f"t = {_num_text(value)}"
    return _num_text(value)


def subset_label(d: dict) -> str:
    """A subset's row label: its measure, and which end / how it was selected when recorded."""
    label = MEASURE_LABELS.get(str(d.get("measure")), str(d.get("measure")))
    extras = [str(d[k]) for k in ("order", "select") if d.get(k) not in (None, "", "top")]
    return f"{label} ({', '.join(extras)})" if extras else label


def ordered(key: str, values: list) -> list:
    """The values of a key in display order: the labels' order, numbers ascending, else by text; missing last."""
    canon = _CANONICAL.get(key)
    present = [v for v in values if not is_missing(v)]
    tail = [v for v in values if is_missing(v)][:1]
    if key == "subset.label":  # "CV (high)": the measure's order, then the label
        measures = list(MEASURE_LABELS.values())
        present.sort(key=lambda v: (measures.index(str(v).split(" ")[0]) if str(v).split(" ")[0] in measures
                                    else len(measures), str(v)))
    elif canon:
        present.sort(key=lambda v: (canon.index(v) if v in canon else len(canon), str(v)))
    elif present and all(as_number(v) is not None for v in present):
        present.sort(key=lambda v: as_number(v))
    else:
        present.sort(key=str)
    return present + tail


def _num_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    n = as_number(v)
    if n is not None and not isinstance(v, str):
        return str(int(n)) if float(n).is_integer() else f"{n:g}"
    return str(v)
