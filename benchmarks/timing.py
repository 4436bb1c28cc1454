"""Timing helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import time

import torch


def sync(device) -> None:
    """Wait for queued GPU work, so wall-clock times cover it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    """(wall seconds, this process's CPU seconds, result): on a shared machine CPU time is steadier."""
    sync(device)
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return time.perf_counter() - t, time.process_time() - c, out


def add_malloc_option(parser) -> None:
    parser.add_argument("--malloc", default="msda", choices=["msda", "default"],
                        help="host allocator settings: msda's (as the CLI runs; see msda_cli/hostmem.py) "
                             "or the process default")


def apply_malloc(choice: str) -> str:
    """Apply msda's allocator settings unless `default` was chosen; the line to print in the header."""
    from msda_cli import hostmem

    if choice == "msda":
        hostmem.keep_freed_memory()
    return hostmem.describe()
