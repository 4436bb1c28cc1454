"""A run's lease: which one process may write for a run, and whether that process still lives.

A run row names its owner by host, pid, pid start time and a random token (`lease`). The store
hands out a lease atomically, by one compare-and-set UPDATE (`Store.start_run` for a new run,
`Store.take_over` to resume one): of two processes resuming the same run, one gets it. While a
process holds a lease, every store write for that run is conditioned on the token and renews the
heartbeat; a heartbeat thread (`Lease.beating`) renews it every HEARTBEAT_SECONDS as well, so a
long epoch or evaluation never makes a live run look dead, and it puts `running` back on a run
that a reader on another host showed as interrupted meanwhile.

The lease is lost when its row is deleted (`msda runs rm --force`) or taken over by another
process after the heartbeat went stale; the next renewal sets `lost`, and the next write for the
run raises LeaseLost, which stops training.
"""

from __future__ import annotations

import threading
from datetime import timedelta, timezone

from msda_cli.errors import RunFailed
from msda_cli.store.db import StoreError
from msda_cli.store.process import ProcessId, alive_on_this_host
from msda_cli.store.tables import utcnow

HEARTBEAT_SECONDS = 60.0
# A run on another host whose heartbeat is older than this is taken as dead.
STALE_AFTER = timedelta(minutes=15)

_HELD: set[str] = set()  # the tokens of the leases this process holds now


class LeaseLost(RunFailed):
    """This process no longer owns its run (deleted, or taken over): it stops and writes nothing."""

    def __init__(self, message: str, run_id: str, deleted: bool):
        super().__init__(message)
        self.run_id, self.deleted = run_id, deleted


def owner_alive(run) -> bool:
    """Whether the process named by a `running` row still runs (and, if it is this one, still holds it)."""
    if run.status != "running":
        return False
    me = ProcessId.current()
    if run.host == me.host:
        if run.pid == me.pid and run.pid_started in (None, me.started):
            return run.lease in _HELD
        return alive_on_this_host(run.pid, run.pid_started)
    return run.heartbeat_at is not None and utcnow() - _aware(run.heartbeat_at) <= STALE_AFTER


def _aware(moment):
    """SQLite gives back the UTC datetimes it was given without their zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def owner_text(run) -> str:
    """"pid 123 on host h, heartbeat 12 s ago": who holds a run, for error messages."""
    age = f"{(utcnow() - _aware(run.heartbeat_at)).total_seconds():.0f} s ago" if run.heartbeat_at else "never"
    return f"pid {run.pid} on host {run.host}, heartbeat {age}"


class Lease:
    """This process's hold on run `run_id` (made by the store; released by `release`)."""

    def __init__(self, store, run_id: str, token: str):
        self.store, self.run_id, self.token = store, run_id, token
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _HELD.add(token)

    def renew(self) -> bool:
        """Renew the heartbeat (restoring `running`); False, and `lost` set, if the lease is gone."""
        try:
            held = self.store.renew_lease(self)
        except StoreError:  # a full disk or a long lock: the lease is not lost for that, retry next beat
            return True
        if not held:
            self.lost.set()
        return held

    def check(self) -> None:
        """Raise LeaseLost once a renewal found the lease gone (cheap: no database access)."""
        if self.lost.is_set():
            raise self.store.lease_lost(self)

    def beating(self, every: float = HEARTBEAT_SECONDS) -> "Lease":
        """Start the heartbeat thread (a daemon: it never keeps a dying process alive)."""
        def beat():
            while not self._stop.wait(every) and self.renew():
                pass

        self._thread = threading.Thread(target=beat, name=f"msda-heartbeat-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def quiet(self, wait: float = 5.0) -> None:
        """Stop the heartbeat and wait for a beat under way, before the owner writes a final status: a late
        beat would turn the `interrupted` row of a stopped run back to `running`."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def release(self) -> None:
        """Stop the heartbeat and forget the lease (the row keeps its last owner for the record)."""
        self.quiet()
        _HELD.discard(self.token)
        self.store.leases.pop(self.run_id, None)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
