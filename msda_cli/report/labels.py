"""Display labels: how the report names methods, architectures, data sets, keys and metrics.

Methods, architectures and data sets are labelled where they are registered
(`@register_mixer("cutmix", label="CutMix")`); the labelled entries, in registration order, and the
measure labels below give the canonical order of rows and columns in ad-hoc pivots.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from msda_cli import metric_names as names
from msda_cli.report.match import as_number, is_missing

MEASURE_LABELS = {"cv": "CV", "mean": "Mean", "std": "Std", "random": "Random"}
KEY_LABELS = {"method": "Method", "arch": "Architecture", "dataset": "Dataset", "seed": "Seed",
              "recipe": "Recipe", "subset.label": "Measure", "subset.ratio": "Subset ratio t"}
METRIC_LABELS = {
    names.TOP1: "top-1 accuracy (%)", names.TOP5: "top-5 accuracy (%)", names.NLL: "test NLL", names.ECE: "ECE (%)",
    "error": "top-1 error (%)", "top1_error": "top-1 error (%)", "top5_error": "top-5 error (%)",
    names.TRAIN_TIME: "training time (s)", names.IMAGES_PER_S: "training throughput (images/s)",
}
REGISTERED = ("method", "arch", "dataset")  # run keys whose values are registry names


@lru_cache(maxsize=None)
def registered_labels(key: str) -> dict[str, str]:
    """{name: label} of the registry behind run key `key`, in registration order (imported on first use:
    the registries bring torch, which a report needs for no other purpose)."""
    if key == "method":
        from msda_cli.mixing import MIXERS as registry
    elif key == "arch":
        from msda_cli.models import MODELS as registry
    else:
        from msda_cli.data import DATASETS as registry
    return dict(registry.labels)


def _value_labels(key: str) -> dict | None:
    return registered_labels(key) if key in REGISTERED else None


def _canonical(key: str) -> list | None:
    if key == "subset.measure":
        return list(MEASURE_LABELS)
    labels = _value_labels(key)
    return list(labels) if labels else None


def key_label(key: str) -> str:
    return KEY_LABELS.get(key, key)


def value_label(key: str, value: Any) -> str:
    """A header for the value of a run key: `CutMix` for method cutmix, `t = 0.05` for a subset ratio."""
    if is_missing(value):
        return "(none)"
    labels = _value_labels(key)
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
    canon = _canonical(key)
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
