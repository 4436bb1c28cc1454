"""The runs table of `msda runs list` and `msda train`: one row per run with its final test top-1."""

from __future__ import annotations

import json

import pandas as pd

from msda_cli.metric_names import EVAL, TOP1


def runs_summary(store, run_ids=None) -> pd.DataFrame:
    """id, recipe, dataset, arch, method, seed, status, epochs (done/planned), top1 (the latest
    final eval top-1, NaN before one exists) and created, in creation order; `run_ids` keeps those."""
    runs = store.runs_frame()
    if run_ids is not None:
        runs = runs[runs["id"].isin(run_ids)]
    finals = store.final_metrics_frame()
    top1 = finals[(finals["kind"] == EVAL) & (finals["metric"] == TOP1)].sort_values("metric_at")
    top1 = top1.drop_duplicates("run_id", keep="last").set_index("run_id")["value"]
    epochs = runs["config"].map(lambda c: json.loads(c).get("epochs"))
    return pd.DataFrame({
        "id": runs["id"], "recipe": runs["recipe"], "dataset": runs["dataset"], "arch": runs["arch"],
        "method": runs["method"], "seed": runs["seed"], "status": runs["status"],
        "epochs": [f"{d}/{e}" for d, e in zip(runs["epochs_done"], epochs)],
        "top1": runs["id"].map(top1), "created": runs["created_at"].astype(str).str[:19],
    })
