"""Runs in parallel on the CPU: N short digits runs with `msda train --jobs 2` against `--jobs 1`.

Baseline (named `--jobs 1`): the same `msda train` command training the runs one after another
in one process with every core, as msda does by default. Measured: `--jobs 2`, the same runs on
two persistent workers (engine/worker.py), each with its share of the cores. Each side is one
whole command, started fresh (start-up of every process included) in its own results folder, one
after the other; the wall-time ratio jobs-1 / jobs-2 is printed. Target on a 2-core CPU: >= 1.6x.

Why a ratio is what it is: each side's median epoch time (stored by every run, `epoch_time_s`)
gives the bound the cores set, 2 x (epoch time of one run alone with every thread) / (epoch
time of a run while another trains beside it): what --jobs 2 would gain if start-up, data set-up
and evaluation cost nothing. One more run alone on one thread shows what a second thread gives one run.

With `--plan-runs N` (e.g. 10000) it then times planning `msda reproduce --dry-run` for the largest
table against a store of N runs, as benchmarks/bench_report.py builds it (target < 2 s).

Usage: python benchmarks/bench_parallel.py [--runs 8] [--epochs 5] [--image-size 32] [--jobs 2] [--plan-runs 0]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from msda_cli.config import cores_given
from msda_cli.metric_names import EPOCH_TIME

TARGET = 1.6


def train_command(runs: int, epochs: int, image_size: int, jobs: int) -> list[str]:
    seeds = ",".join(map(str, range(runs)))
    return [sys.executable, "-m", "msda_cli", "train", "--recipe", "digits-mixup", "--seeds", seeds,
            "--epochs", str(epochs), "--set", f"data.options.image_size={image_size}", "--jobs", str(jobs)]


def timed_train(command: list[str], results: Path, **environ: str) -> float:
    results.mkdir(parents=True)
    env = {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(results / "msda.db"), **environ}
    t = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(command[3:])} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return seconds


def epoch_times(db: Path) -> tuple[float, int]:
    """The median stored epoch time (first epochs left out: they warm up) and the threads the runs used."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT epoch, value FROM metric WHERE name=? AND epoch IS NOT NULL", (EPOCH_TIME,))
        pairs = list(rows)
        times = [v for e, v in pairs if e > 0] or [v for _, v in pairs]  # one-epoch runs: their only epoch
        threads = {int(t) for (t,) in con.execute("SELECT json_extract(config, '$.threads') FROM run")}
    finally:
        con.close()
    return statistics.median(times), max(threads)


def time_planning(n_runs: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_report import make_store, time_dry_run

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        make_store(path, n_runs, n_runs * 20)
        print(f"\nstore of {n_runs} runs ({n_runs * 20} metric rows) written in {time.perf_counter() - t:.1f} s")
        time_dry_run(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="digits-mixup runs (seeds 0..runs-1)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once on the measured side")
    parser.add_argument("--plan-runs", type=int, default=0, help="then time planning against a store this big")
    args = parser.parse_args(argv)

    print(f"{args.runs} digits-mixup runs of {args.epochs} epochs at {args.image_size}x{args.image_size}; "
          f"{os.cpu_count()} CPUs, {cores_given()} cores given; load average {os.getloadavg()[0]:.2f} at start",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        times, epochs = {}, {}
        for jobs in (1, args.jobs):
            command = train_command(args.runs, args.epochs, args.image_size, jobs)
            results = Path(tmp) / f"jobs{jobs}"
            times[jobs] = timed_train(command, results)
            epochs[jobs] = epoch_times(results / "msda.db")
            label = "baseline --jobs 1 (one process)" if jobs == 1 else f"--jobs {jobs} (persistent workers)"
            print(f"{label:<36} {times[jobs]:8.1f} s  ({times[jobs] / args.runs:.2f} s a run; median epoch "
                  f"{epochs[jobs][0]:.3f} s on {epochs[jobs][1]} thread(s))", flush=True)
        timed_train(train_command(1, args.epochs, args.image_size, 1), Path(tmp) / "alone1", OMP_NUM_THREADS="1")
        alone = epoch_times(Path(tmp) / "alone1" / "msda.db")[0]
    print(f"one run alone: median epoch {epochs[1][0]:.3f} s on {epochs[1][1]} thread(s), {alone:.3f} s on 1 thread "
          f"({alone / epochs[1][0]:.2f}x from the extra threads)")
    ratio = times[1] / times[args.jobs]
    bound = args.jobs * epochs[1][0] / epochs[args.jobs][0]
    print(f"ratio jobs 1 / jobs {args.jobs}: {ratio:.2f}x  (target >= {TARGET}x on a 2-core CPU); the cores' bound "
          f"{args.jobs} x {epochs[1][0]:.3f} / {epochs[args.jobs][0]:.3f} = {bound:.2f}x; "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.plan_runs:
        time_planning(args.plan_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
