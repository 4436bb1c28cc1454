"""Which process owns a run, and whether it is still alive.

A process is named by its host, its pid and its start time (clock ticks after boot, field 22
of /proc/<pid>/stat). A pid alone can lie: the kernel hands a dead process's pid to the next
process it starts, and a zombie answers `kill(pid, 0)` although it will never run again.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

_PROC = "/proc"


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot); None if there is none or it is a zombie."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):  # field 3, the state: zombie or dead
        return None
    return int(fields[19])


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    started: int | None  # None where /proc does not exist (then the pid alone is compared)

    @classmethod
    def current(cls) -> "ProcessId":
        return cls(socket.gethostname(), os.getpid(), start_ticks(os.getpid()))


def alive_on_this_host(pid: int | None, started: int | None) -> bool:
    """Whether process `pid` started at `started` still runs here (`started` None: any process `pid`)."""
    if not pid:
        return False
    if os.path.isdir(f"{_PROC}/self"):
        now = start_ticks(pid)
        return now is not None and (started is None or now == started)
    try:  # no /proc (macOS): a zombie or a reused pid cannot be told from the owner
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
