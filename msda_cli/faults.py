"""Fault injection at named points, so tests can kill or break a process at an exact moment.

Code marks a moment with `fault_point("checkpoint.before_rename")`. Normally that is one dict
lookup. With `MSDA_FAULT=NAME[:ACTION][@N]` in the environment, the N-th time (default the first)
the process reaches NAME it performs ACTION:

- `kill` (default): SIGKILL itself — nothing is flushed, no handler runs (a power cut, the OOM killer);
- `term`: SIGTERM itself (the handlers run, as for `kill PID` or a Slurm preemption);
- `enospc`: raise OSError(ENOSPC) (a full disk);
- `error`: raise RuntimeError (a bug).

Several faults are separated by commas. Points are named `area.moment`; `FAULT_POINTS` lists them
all, and `fault_point` refuses a name not listed there so a renamed point cannot silently stop
being tested.
"""

from __future__ import annotations

import errno
import os
import signal

FAULT_POINTS: set[str] = set()
_counts: dict[str, int] = {}


def declare(*names: str) -> None:
    """Register the fault points a module uses (at import time)."""
    FAULT_POINTS.update(names)


def _parse(spec: str) -> dict[str, tuple[str, int]]:
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, when = item.partition("@")
        name, _, action = name.partition(":")
        plan[name] = (action or "kill", int(when) if when else 1)
    return plan


def fault_point(name: str) -> None:
    """Perform the fault `MSDA_FAULT` asks for at `name`, if any."""
    if name not in FAULT_POINTS:
        raise KeyError(f"undeclared fault point {name!r}")
    spec = os.environ.get("MSDA_FAULT")
    if not spec:
        return
    planned = _parse(spec).get(name)
    if planned is None:
        return
    action, nth = planned
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + f" (injected at {name})")
    elif action == "error":
        raise RuntimeError(f"fault injected at {name}")
    else:
        raise ValueError(f"unknown fault action {action!r} in MSDA_FAULT")
