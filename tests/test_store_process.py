"""A run's owner is a process named by pid and start time: a zombie or a reused pid is no owner."""

import os
import subprocess
import sys
import time

import pytest

from msda_cli.store import Store
from msda_cli.store.process import alive_on_this_host, start_ticks

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process start times come from /proc")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _owned_by(store: Store, pid: int, started: int | None) -> str:
    run = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla")
    store.update_run(run.id, pid=pid, pid_started=started)
    return run.id


def test_a_zombie_owner_is_dead(db_path):
    store = Store(db_path)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        run_id = _owned_by(store, child.pid, start_ticks(child.pid))
        assert store.get_run(run_id).status == "running"
        child.stdin.close()  # the child exits; not waited for, it stays a zombie
        deadline = time.time() + 20
        while _state(child.pid) != "Z" and time.time() < deadline:
            time.sleep(0.01)
        assert _state(child.pid) == "Z"
        os.kill(child.pid, 0)  # a zombie still answers signal 0: the pid alone cannot tell
        assert store.get_run(run_id).status == "interrupted"
    finally:
        child.wait()


def test_a_reused_pid_is_not_the_owner(db_path):
    store = Store(db_path)
    parent = os.getppid()  # a live process that started at a known time
    started = start_ticks(parent)
    reused = _owned_by(store, parent, started - 1)  # the owner had this pid, and started earlier
    owner = _owned_by(store, parent, started)
    statuses = {r.id: r.status for r in store.list_runs()}
    assert statuses == {reused: "interrupted", owner: "running"}


def test_start_ticks_of_a_command_with_spaces_and_parentheses(tmp_path):
    odd = tmp_path / "a (b) c"
    odd.symlink_to(sys.executable)
    child = subprocess.Popen([str(odd), "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        started = start_ticks(child.pid)
        assert isinstance(started, int) and started >= start_ticks(os.getpid())
        assert alive_on_this_host(child.pid, started) and not alive_on_this_host(child.pid, started + 1)
    finally:
        child.stdin.close()
        child.wait()
    assert start_ticks(child.pid) is None and not alive_on_this_host(child.pid, started)
