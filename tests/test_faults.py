"""The fault injector itself: named points, actions, the N-th hit."""

import errno
import subprocess
import sys

import pytest

from msda_cli import faults


def test_undeclared_point_is_refused():
    with pytest.raises(KeyError):
        faults.fault_point("no.such.point")


def test_nothing_happens_without_the_variable(monkeypatch):
    faults.declare("test.quiet")
    monkeypatch.delenv("MSDA_FAULT", raising=False)
    faults.fault_point("test.quiet")


def test_enospc_on_the_second_hit(monkeypatch):
    faults.declare("test.disk")
    monkeypatch.setenv("MSDA_FAULT", "other.point, test.disk:enospc@2")
    faults._counts.pop("test.disk", None)
    faults.fault_point("test.disk")
    with pytest.raises(OSError) as info:
        faults.fault_point("test.disk")
    assert info.value.errno == errno.ENOSPC
    faults.fault_point("test.disk")  # only the second hit fails


def test_kill_is_sigkill():
    code = "from msda_cli import faults; faults.declare('test.kill'); faults.fault_point('test.kill'); print('alive')"
    proc = subprocess.run([sys.executable, "-c", code], env={"MSDA_FAULT": "test.kill", "PATH": ""},
                          capture_output=True, text=True)
    assert proc.returncode == -9 and "alive" not in proc.stdout
