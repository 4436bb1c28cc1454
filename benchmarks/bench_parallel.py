"""Runs in parallel on the CPU: N short digits runs with `msda train --jobs 2` against `--jobs 1`.

Baseline (named `--jobs 1`): the same `msda train` command training the runs one after another
in one process with every core, as msda does by default. Measured: `--jobs 2`, every run in its
own child process with half of the cores (engine/parallel.py). Each side is one whole command,
started fresh (start-up of every process included) in its own results folder, one after the
other; the wall-time ratio jobs-1 / jobs-2 is printed. Target on a 2-core CPU: >= 1.6x.

Usage: python benchmarks/bench_parallel.py [--runs 8] [--epochs 5] [--image-size 32] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGET = 1.6


def train_command(runs: int, epochs: int, image_size: int, jobs: int) -> list[str]:
    seeds = ",".join(map(str, range(runs)))
    return [sys.executable, "-m", "msda_cli", "train", "--recipe", "digits-mixup", "--seeds", seeds,
            "--epochs", str(epochs), "--set", f"data.options.image_size={image_size}", "--jobs", str(jobs)]


def timed_train(command: list[str], results: Path) -> float:
    results.mkdir(parents=True)
    env = {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(results / "msda.db")}
    t = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(command[3:])} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="digits-mixup runs (seeds 0..runs-1)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once on the measured side")
    args = parser.parse_args(argv)

    print(f"{args.runs} digits-mixup runs of {args.epochs} epochs at {args.image_size}x{args.image_size}; "
          f"{os.cpu_count()} CPUs, torch uses {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for jobs in (1, args.jobs):
            command = train_command(args.runs, args.epochs, args.image_size, jobs)
            times[jobs] = timed_train(command, Path(tmp) / f"jobs{jobs}")
            label = "baseline --jobs 1 (one process)" if jobs == 1 else f"--jobs {jobs} (child processes)"
            print(f"{label:<36} {times[jobs]:8.1f} s  ({times[jobs] / args.runs:.2f} s a run)")
    ratio = times[1] / times[args.jobs]
    print(f"ratio jobs 1 / jobs {args.jobs}: {ratio:.2f}x  (target >= {TARGET}x on a 2-core CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
