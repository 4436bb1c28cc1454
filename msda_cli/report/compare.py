"""`msda runs compare`: runs side by side, the config keys that differ and the final metrics."""

from __future__ import annotations

import json

import pandas as pd

from msda_cli.report.settings import flatten

RUN_FIELDS = ("name", "recipe", "status", "epochs_done", "tags")


def _label(run) -> str:
    return f"{run.id} {run.method}/{run.arch}/s{run.seed}"


def compare_runs(store, runs: list, all_keys: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(config: one row per key whose values differ between the runs, or every key; metrics: one row per
    final metric, its latest value per run), one column per run."""
    labels = [_label(run) for run in runs]
    flat = [{**{f: "" if getattr(run, f) is None else getattr(run, f) for f in RUN_FIELDS},
             **flatten(json.loads(run.config))} for run in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    shown = [k for k in keys if all_keys or len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
    config = pd.DataFrame([{"key": k, **{lab: f.get(k, "") for lab, f in zip(labels, flat)}} for k in shown],
                          columns=["key", *labels])
    finals: dict[tuple, dict] = {}
    for lab, run in zip(labels, runs):
        for m in store.metrics(run.id):
            if m.epoch is None:
                params = json.loads(m.params or "{}")
                setting = ", ".join(f"{k}={v}" for k, v in sorted(flatten(params).items()))
                finals.setdefault((m.kind, m.name, setting), {})[lab] = m.value  # latest wins (id order)
    metrics = pd.DataFrame([{"kind": k, "metric": n, "settings": s, **{lab: v.get(lab) for lab in labels}}
                            for (k, n, s), v in finals.items()], columns=["kind", "metric", "settings", *labels])
    return config, metrics
