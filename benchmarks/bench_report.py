"""`msda report` speed on a large store: every paper table and an ad-hoc pivot.

Builds a store of 10 000 runs and 200 000 metric rows (bulk inserts through SQLAlchemy core):
three seeds of every paper-table cell, made from its plan's resolved config, then runs of
random data sets, architectures and methods on those configs (other settings, which every
table leaves out and names). Loads `Store.final_metrics_frame()` once, then times
`build_report` + rendering in every format (markdown, LaTeX, CSV, JSON, rich) for each table
id and for an ad-hoc pivot (method x arch of top-1 on CIFAR-100, with a --where on a config key).

Baseline (named `naive per-cell loop`): the same cells computed by a per-cell Python loop
over every row of the frame (json.loads of each candidate row's config and params, its
setting compared with the plan's, latest value per run, mean/std with `statistics`), as a
first implementation would do it. It runs on a few tables (it is slow); its means are checked
against ours, and the ratio naive / ours is printed.

Then times planning `msda reproduce --table ID --dry-run` for the largest table (most
planned runs) against the same store: resolving every cell's plan (caches cleared), matching
each planned run to the stored runs and metrics, the data check and the printed plan.

Usage: python benchmarks/bench_report.py [--runs 10000] [--metrics 200000] [--db PATH]
Target: < 2 s per table (build + render, first table included); < 2 s to plan the largest table.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from rich.console import Console

from msda_cli import metric_names as names
from msda_cli.errors import MsdaError
from msda_cli.report import TABLES, build_report, list_tables, render
from msda_cli.report.build import table_plans
from msda_cli import config
from msda_cli.report.frame import FINISHED, clear_prepared, prepare
from msda_cli.report.match import as_matcher
from msda_cli.report import plan as plans
from msda_cli.report.plan import resolve
from msda_cli.report.settings import setting, setting_text
from msda_cli.store import Store
from msda_cli.store.tables import Metric, Run, Subset

FORMATS = ("markdown", "latex", "csv", "json", "rich")
METHODS = ["vanilla", "mixup", "cutmix", "mixup-cutmix", "hmix", "gmix", "mixupe", "dmixup", "dcutmix",
           "saliency-dcutmix", "cutout", "manifold-mixup", "puzzlemix"]
ARCHS = ["resnet56", "wrn28-2", "preactresnet18", "preactresnet34", "preactresnet50", "preactresnet101",
         "wrn28-10", "wrn16-8", "resnext29-4-24", "pyramidnet110", "pyramidnet200", "resnet50"]
DATASETS = ["cifar10", "cifar100", "svhn", "tiny-imagenet", "imagenet", "digits"]
ROBUST = [(names.FGSM, {"attack": "fgsm", "eps": 8, "mode": "white-box"}),
          (names.PGD, {"attack": "pgd", "eps": 8, "steps": 10, "step_size": 2, "mode": "gray-box"}),
          (names.PGD, {"attack": "pgd", "eps": 8, "steps": 10, "step_size": 2, "mode": "black-box"}),
          (names.NATURAL_ADV_TOP1, {"protocol": "imagenet-a-200"}), (names.OOD_AUPR, {"ood_set": "imagenet-o"}),
          (names.DEFORM_TOP1, {"deformation": "rotate20"}), (names.DEFORM_TOP1, {"deformation": "shear28.6"}),
          (names.DEFORM_TOP1, {"deformation": "zoomin60"}), (names.DEFORM_TOP1, {"deformation": "zoomout140"}),
          (names.OOD_AUROC, {"ood_set": "imagenet-o"})]


def table_cells() -> list[dict]:
    """Every trainable paper-table cell's resolved config (so the big store fills every table)."""
    return [res.config for spec in list_tables() for _, res in table_plans(spec) if res is not None]


def make_store(path: Path, n_runs: int, n_metrics: int, seed: int = 0) -> Store:
    rng = random.Random(seed)
    store = Store(path)
    now = datetime.now(timezone.utc)
    cells = table_cells()
    subset_config = resolve(TABLES["dcutmix-fig5a"].plan).config
    subsets = [dict(id=f"sub{i}", source_run_id="r000000", measure=m, ratio=t, seed=0, size=500,
                    indices_path="x.npy", params="{}", created_at=now)
               for i, (m, t) in enumerate((m, t) for m in ("cv", "mean", "std", "random") for t in (0.05, 0.1, 0.2))]
    runs, metrics = [], []
    per_run_final = 6  # top1 top5 nll ece train_time_s images_per_s
    n_robust_runs = n_runs * 2 // 5
    epochs = max(0, (n_metrics - n_runs * per_run_final - n_robust_runs * len(ROBUST)) // n_runs)
    for i in range(n_runs):
        if i < len(cells) * 3:  # three seeds of every paper cell first
            cfg, seed_ = dict(cells[i // 3]), i % 3
        else:  # another setting: a cell's config on a random data set, architecture and method
            cfg = dict(rng.choice(cells), dataset=rng.choice(DATASETS), arch=rng.choice(ARCHS),
                       method=rng.choice(METHODS))
            cfg["epochs"] = rng.choice([cfg["epochs"], 30, 100])
            seed_ = rng.randrange(5)
        sub = None
        if i >= n_runs - 240:  # subset-trained DCutMix runs for Figure 5a
            cfg = dict(subset_config)
            sub = subsets[i % len(subsets)]["id"]
        cfg["seed"] = seed_
        rid = f"r{i:06d}"
        status = FINISHED if rng.random() < 0.92 else rng.choice(["failed", "interrupted", "running"])
        runs.append(dict(id=rid, name=f"bench-{i}", recipe="bench", dataset=cfg["dataset"], arch=cfg["arch"],
                         method=cfg["method"], seed=seed_, config=json.dumps(cfg), status=status, epochs_done=300,
                         created_at=now, host="bench", msda_version="0", subset_id=sub))
        t = now + timedelta(seconds=i)
        acc = rng.uniform(50, 95)
        for name, value in ((names.TOP1, acc), (names.TOP5, min(100, acc + 15)), (names.NLL, rng.uniform(0.5, 2)),
                            (names.ECE, rng.uniform(1, 10))):
            metrics.append(dict(run_id=rid, kind=names.EVAL, name=name, value=value, epoch=None, params="{}",
                                created_at=t))
        for name in (names.TRAIN_TIME, names.IMAGES_PER_S):
            metrics.append(dict(run_id=rid, kind=names.TRAIN, name=name, value=rng.uniform(1e3, 1e4), epoch=None,
                                params="{}", created_at=t))
        for e in range(epochs):
            metrics.append(dict(run_id=rid, kind=names.TRAIN, name=names.TRAIN_LOSS, value=rng.random(), epoch=e,
                                params="{}", created_at=t))
        if i % 5 < 2:
            for name, params in ROBUST:
                metrics.append(dict(run_id=rid, kind=names.ROBUST, name=name, value=rng.uniform(0, 60), epoch=None,
                                    params=json.dumps({**params, "n_examples": 1000}, sort_keys=True), created_at=t))
    with store.engine.begin() as con:
        con.execute(insert(Run.__table__), runs)
        con.execute(insert(Subset.__table__), subsets)
        for k in range(0, len(metrics), 50_000):
            con.execute(insert(Metric.__table__), metrics[k:k + 50_000])
    return store


# ----- the named baseline: a per-cell Python loop -------------------------------------------
def naive_table(records: list[dict], spec) -> dict:
    """{(row label, col label): (mean, std, n)}: every cell scans every row of the frame."""
    out = {}
    for cell, res in table_plans(spec):
        if res is None:
            continue
        ms = cell.metric
        latest: dict[str, tuple] = {}
        for rec in records:
            if rec["metric"] != ms.name or (ms.kind and rec["kind"] != ms.kind) or rec["status"] != FINISHED:
                continue
            if (rec["dataset"], rec["arch"], rec["method"]) != (res.dataset, res.arch, res.method):
                continue
            if isinstance(rec["subset_id"], str) or setting_text(setting(json.loads(rec["config"]))) != res.text:
                continue
            params = json.loads(rec["params"] or "{}")
            if not all(as_matcher(v).test(params.get(k)) for k, v in ms.params.items()):
                continue
            prev = latest.get(rec["run_id"])
            if prev is None or rec["metric_at"] >= prev[0]:
                latest[rec["run_id"]] = (rec["metric_at"], rec["value"])
        vals = [100.0 - v if ms.transform == "error" else v for _, v in latest.values()]
        if vals:
            out[(cell.row.path, cell.col.label)] = (statistics.fmean(vals),
                                                  statistics.stdev(vals) if len(vals) > 1 else None, len(vals))
    return out


def time_dry_run(path: Path) -> None:
    """`msda reproduce --table ID --dry-run` for the table with the most planned runs."""
    from msda_cli.reproduce import Request, reproduce

    distinct = {s.id: len({res.text for _, res in table_plans(s) if res is not None}) for s in list_tables()
                if not (s.dynamic_rows or s.dynamic_cols)}
    largest = max(distinct, key=distinct.get)
    plans._resolve.cache_clear()  # cold: every plan resolved again, as in one `msda reproduce` call
    config._parse_file.cache_clear()  # and every recipe file parsed again
    shown = io.StringIO()
    t = time.perf_counter()
    try:
        reproduce(Request(table=largest), path, dry_run=True, launcher=dict(jobs=None, gpus=None, gpus_per_run=None,
                                                                             cpu=True),
                  out=Console(file=shown, width=200), err=Console(file=io.StringIO()))
        ending = "--dry-run"
    except MsdaError as e:  # the bench machine has none of the papers' data: the plan says so
        ending = f"data check: {str(e)[:60]}..."
    took = time.perf_counter() - t
    planned = shown.getvalue().split(f"table {largest}: ", 1)[1].split(" (", 1)[0]
    print(f"\nplan `msda reproduce --table {largest} --dry-run` ({distinct[largest]} plans x 3 seeds = {planned}, "
          f"against the store above): {took:.2f} s (target < 2 s); ends with the {ending}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--metrics", type=int, default=200_000)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--baseline-tables", default="2,mixupe-2b,dcutmix-5")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    path = args.db or Path(tmp.name) / "bench.db"
    if path.exists():
        path.unlink()
    t = time.perf_counter()
    store = make_store(path, args.runs, args.metrics)
    t_make = time.perf_counter() - t
    with store.engine.connect() as con:
        n_runs = con.exec_driver_sql("SELECT count(*) FROM run").scalar()
        n_metrics = con.exec_driver_sql("SELECT count(*) FROM metric").scalar()
    print(f"store: {n_runs} runs, {n_metrics} metric rows, written in {t_make:.2f} s "
          f"({path.stat().st_size / 1e6:.0f} MB)")

    t = time.perf_counter()
    frame = store.final_metrics_frame()
    subsets = store.list_subsets()
    t_load = time.perf_counter() - t
    print(f"load final_metrics_frame: {len(frame)} rows in {t_load:.2f} s (once per `msda report`)")

    t = time.perf_counter()
    n_cells = sum(len(table_plans(spec)) for spec in list_tables())
    print(f"resolve every cell's plan ({n_cells} cells, recipe imports included; cached per process): "
          f"{time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    prepare(frame, subsets)
    t_prep = time.perf_counter() - t
    print(f"prepare (parse configs, index metrics; cached per frame): {t_prep:.2f} s\n")

    print(f"{'table':<16}{'build s':>9}{'render s':>10}{'total s':>9}  filled cells")
    timings = {}
    specs = [s.id for s in list_tables()] + ["ad-hoc"]
    for tid in specs:
        t0 = time.perf_counter()
        if tid == "ad-hoc":
            rep = build_report(frame, rows="method", cols="arch", metric=names.TOP1,
                               where=["dataset=cifar100", "optim.lr=0.1"], subsets=subsets, paper=True)
        else:
            rep = build_report(frame, table=tid, subsets=subsets, paper=True)
        t1 = time.perf_counter()
        for fmt in FORMATS:
            render(rep, fmt)
        t2 = time.perf_counter()
        timings[tid] = (t1 - t0, t2 - t1)
        filled = sum(1 for row in rep.cells for c in row if c.n)
        total = sum(1 for row in rep.cells for c in row if not c.derived)
        print(f"{tid:<16}{t1 - t0:>9.3f}{t2 - t1:>10.3f}{t2 - t0:>9.3f}  {filled}/{total}")
    worst = max(timings, key=lambda k: sum(timings[k]))
    print(f"\nslowest: {worst} {sum(timings[worst]):.3f} s (target < 2 s); all {len(timings)}: "
          f"{sum(sum(v) for v in timings.values()):.2f} s")
    cold = t_prep + sum(timings[specs[0]])
    print(f"first table including prepare: {cold:.2f} s; including the frame load: {cold + t_load:.2f} s")

    # baseline
    records = frame.to_dict("records")
    print("\nbaseline `naive per-cell loop` vs ours (build only, same cells; the naive loop gets the rows as "
          "dicts for free):")
    ratios = []
    for tid in args.baseline_tables.split(","):
        spec = TABLES[tid]
        t = time.perf_counter()
        naive = naive_table(records, spec)
        t_naive = time.perf_counter() - t
        clear_prepared()  # cold: ours re-parses every config too, as one `msda report --table` call does
        t = time.perf_counter()
        rep = build_report(frame, table=tid, subsets=subsets)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        build_report(frame, table=tid, subsets=subsets)
        t_warm = time.perf_counter() - t
        ours = {}
        for path_, row in zip(rep.rows, rep.cells):
            for col, cell in zip(rep.columns, row):
                if cell.n:
                    ours[(tuple(p for p in path_ if p), col)] = (cell.mean, cell.std, cell.n)
        assert set(ours) == set(naive), (tid, set(ours) ^ set(naive))
        for key, (m, s, n) in naive.items():
            om, os_, on = ours[key]
            assert on == n and math.isclose(om, m, rel_tol=1e-9) and (s is None) == (os_ is None), (tid, key)
        ratios.append(t_naive / t_ours)
        print(f"  {tid:<14} naive {t_naive:6.2f} s   ours cold {t_ours:6.3f} s (ratio {t_naive / t_ours:5.1f}x)   "
              f"warm {t_warm:6.4f} s (ratio {t_naive / t_warm:6.0f}x)   {len(naive)} cells, means agree")
    print(f"speed-up over the naive per-cell loop, cold (geometric mean): "
          f"{float(np.exp(np.mean(np.log(ratios)))):.1f}x")
    time_dry_run(path)
    tmp.cleanup()


if __name__ == "__main__":
    main()
