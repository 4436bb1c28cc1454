"""The runs table of `msda runs list` and `msda train`: one row per run with its final test top-1."""

from __future__ import annotations

import json

import pandas as pd

from msda_cli.metric_names import EPOCH_TIME, EVAL, TOP1, TRAIN
from msda_cli.store.progress import read_progress


def clock(seconds: float) -> str:
    """12 s, 3m05s, 2h07m: a duration as people read it."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta(store, run_id: str, done: int, planned: int | None) -> str:
    """A running run's time left: its mean stored epoch time times the epochs to go ('' before one epoch)."""
    times = [m.value for m in store.metrics(run_id, TRAIN) if m.name == EPOCH_TIME]
    if not times or planned is None:
        return ""
    return clock(sum(times) / len(times) * max(planned - done, 0))


def runs_summary(store, run_ids=None) -> pd.DataFrame:
    """id, recipe, dataset, arch, method, seed, status, epochs (done/planned), step (the epoch in progress's
    steps done/all) and eta (running runs, live from their progress file, else from the stored epoch times),
    top1 (the latest final eval top-1, NaN before one exists), name, tags and created, in creation order;
    `run_ids` keeps those."""
    runs = store.runs_frame()
    if run_ids is not None:
        runs = runs[runs["id"].isin(run_ids)]
    finals = store.final_metrics_frame()
    top1 = finals[(finals["kind"] == EVAL) & (finals["metric"] == TOP1)].sort_values("metric_at")
    top1 = top1.drop_duplicates("run_id", keep="last").set_index("run_id")["value"]
    epochs = runs["config"].map(lambda c: json.loads(c).get("epochs"))
    live = [read_progress(store.run_dir(i)) if s == "running" else None for i, s in zip(runs["id"], runs["status"])]
    left = [clock(p["eta_s"]) if p and p.get("eta_s") is not None else eta(store, i, d, e) if s == "running" else ""
            for i, s, d, e, p in zip(runs["id"], runs["status"], runs["epochs_done"], epochs, live)]
    return pd.DataFrame({
        "id": runs["id"], "recipe": runs["recipe"], "dataset": runs["dataset"], "arch": runs["arch"],
        "method": runs["method"], "seed": runs["seed"], "status": runs["status"],
        "epochs": [f"{d}/{e}" for d, e in zip(runs["epochs_done"], epochs)],
        "step": [f"{p['step']}/{p['steps']}" if p and p["epoch"] == d else ""  # a step of the epoch after those done
                 for p, d in zip(live, runs["epochs_done"])], "eta": left,
        "top1": runs["id"].map(top1), "name": runs["name"], "tags": runs["tags"].fillna(""),
        "created": runs["created_at"].astype(str).str[:19],
    })
