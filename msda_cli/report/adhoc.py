"""An ad-hoc pivot (`--rows`, `--cols`, `--metric`) as a table declaration with data-made headers."""

from __future__ import annotations

from typing import Iterable

from msda_cli import metric_names as names
from msda_cli.errors import MsdaError
from msda_cli.report.filters import check_keys
from msda_cli.report.frame import Prepared
from msda_cli.report.labels import KEY_LABELS, METRIC_LABELS, key_label
from msda_cli.report.spec import MetricSpec, TableSpec

KIND_PREFERENCE = (names.EVAL, names.ROBUST, names.TRAIN, names.SUBSAMPLE, names.ANALYSIS)
DERIVED_METRICS = {  # ad-hoc names that are not stored as such
    "error": (names.TOP1, "error"), "top1_error": (names.TOP1, "error"), "top5_error": (names.TOP5, "error"),
}
EVAL_METRICS = (names.TOP1, names.TOP5, names.NLL, names.ECE)
LOWER_IS_BETTER_WORDS = ("error", "nll", "ece", "loss", "time")


def resolve_metric(prep: Prepared, name: str) -> MetricSpec:
    """An ad-hoc metric name: a stored metric (optionally `kind:name`) or error/top5_error."""
    kind, _, base = name.rpartition(":")
    kind = kind or None
    if base in DERIVED_METRICS and kind in (None, names.EVAL):
        stored, transform = DERIVED_METRICS[base]
        return MetricSpec(stored, names.EVAL, transform=transform, label=METRIC_LABELS[base], lower_is_better=True)
    kinds = [k for (k, n) in prep.metric_pairs if n == base and (kind is None or k == kind)]
    known_eval = base in EVAL_METRICS and kind in (None, names.EVAL)
    if not kinds and not known_eval:
        present = prep.metric_names()
        raise MsdaError(f"unknown metric {name!r}; metrics in the store: {', '.join(present) or 'none'}; "
                        f"also: {', '.join(DERIVED_METRICS)}")
    if kind is None:
        kinds.sort(key=lambda k: KIND_PREFERENCE.index(k) if k in KIND_PREFERENCE else 99)
        kind = kinds[0] if kinds else names.EVAL
    lower = any(w in base for w in LOWER_IS_BETTER_WORDS)
    return MetricSpec(base, kind, label=METRIC_LABELS.get(base, base), lower_is_better=lower)


def pivot_spec(prep: Prepared, rows: str, cols: str, metric: str | None, where: Iterable[str] = ()) -> TableSpec:
    """The declaration of `--rows R --cols C --metric M`; MsdaError on an unknown key (also of
    the `--where` keys given) or metric."""
    row_keys = [k.strip() for k in (rows or "").split(",") if k.strip()]
    col_keys = [k.strip() for k in (cols or "").split(",") if k.strip()]
    if not row_keys or not col_keys:
        raise MsdaError("--rows and --cols each need at least one key (e.g. --rows method --cols arch)")
    check_keys(prep, where, "--where")
    for k in (*row_keys, *col_keys):
        if k.startswith("params."):
            raise MsdaError(f"--rows/--cols take run or config keys, not metric settings ({k}); "
                            f"filter settings with --where {k}=VALUE")
    check_keys(prep, row_keys, "--rows")
    check_keys(prep, col_keys, "--cols")
    ms = resolve_metric(prep, metric or names.TOP1)
    if len(row_keys) > 2:  # the outer keys share one label column
        row_names = (" / ".join(key_label(k) for k in row_keys[:-1]), key_label(row_keys[-1]))
    else:
        row_names = tuple(key_label(k) for k in row_keys)
    return TableSpec(
        id="", source=None, paper_table="", rows=(), cols=(), metric=ms,
        caption=f"{ms.label[:1].upper()}{ms.label[1:]} by {_keys_text(row_keys)} and {_keys_text(col_keys)}",
        row_names=row_names, dynamic_rows=",".join(row_keys), dynamic_cols=",".join(col_keys), best="column",
    )


def _keys_text(keys: list[str]) -> str:
    return " × ".join(KEY_LABELS[k].lower() if k in KEY_LABELS else k for k in keys)
