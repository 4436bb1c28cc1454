"""A running run's live progress: a tiny JSON file in its folder, read by `msda runs list`.

The training loop ticks a `ProgressFile` every step; it writes (atomic replace, no fsync) at most every
`INTERVAL_S` seconds, so the database still sees a run once per epoch plus its heartbeat. A failed write
is dropped: the display never stops training. The file says the epoch in progress (0-based), the steps
done in it, and the time left at the rate this process has trained at (evaluations included).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from msda_cli.faults import declare, fault_point

NAME = "progress.json"
INTERVAL_S = 2.0  # often enough to watch, rare enough to cost nothing next to a step

declare("progress.write")


class ProgressFile:
    def __init__(self, run_dir: Path, start_epoch: int, epochs: int, steps_per_epoch: int,
                 interval: float = INTERVAL_S, clock=time.monotonic):
        self.path = Path(run_dir) / NAME
        self.start, self.epochs, self.steps = start_epoch, epochs, steps_per_epoch
        self.interval, self.clock = interval, clock
        self.began, self.done, self.written = clock(), 0, -math.inf

    def tick(self) -> None:
        """One training step done; write the file if the last write is `interval` old."""
        self.done += 1
        now = self.clock()
        if now - self.written < self.interval:
            return
        self.written = now
        epoch, step = divmod(self.start * self.steps + self.done - 1, self.steps)
        left = self.epochs * self.steps - self.start * self.steps - self.done
        state = {"epoch": epoch, "epochs": self.epochs, "step": step + 1, "steps": self.steps,
                 "eta_s": (now - self.began) / self.done * left, "at": time.time()}
        partial = self.path.with_name(NAME + ".tmp")
        try:
            fault_point("progress.write")
            partial.write_text(json.dumps(state))
            os.replace(partial, self.path)
        except OSError:  # a full or read-only disk: training goes on without the live display
            pass


def clear(run_dir: Path) -> None:
    """Remove a run's progress file once its trainer stops (finished, failed or interrupted): it is live state."""
    for name in (NAME, NAME + ".tmp"):
        try:
            (Path(run_dir) / name).unlink(missing_ok=True)
        except OSError:
            pass


def read_progress(run_dir: Path) -> dict | None:
    """The last progress a run's trainer wrote, or None (none written, or unreadable)."""
    try:
        state = json.loads((Path(run_dir) / NAME).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and {"epoch", "step", "steps"} <= state.keys() else None
