"""A one-node Slurm cluster for the test session: munged, slurmctld and slurmd as root, from a slurm.conf
in a temporary directory (`SLURM_CONF` points at it), stopped at the end.

Debian's `slurm-wlm` and `munge` provide the daemons (`.ci/run` installs them). The node has this
machine's cores and memory; accounting is off (`msda runs list` reads job states from squeue).
The tests that need it skip only where the daemons cannot run at all, and fail instead where
MSDA_TEST_SLURM=required (`.ci/run` sets it: in CI they must run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from msda_cli.engine.parallel import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "debug"


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        total_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return total_kb // 1024 - 512  # slurmd refuses a node that reports less than it is configured with


def _config(root: Path, host: str) -> str:
    return f"""\
ClusterName=msdatest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire=5
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
KillWait=15
MinJobAge=600
InactiveLimit=0
JobRequeue=1
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """The running cluster: its directory, config file and daemons."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _start(self, *command: str) -> None:
        log = open(self.root / f"{Path(command[0]).name}.out", "ab")
        self.procs.append(subprocess.Popen(command, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL))

    def start(self) -> None:
        host = socket.gethostname()
        munge = self.root / "munge"
        munge.mkdir(mode=0o700)
        for sub in ("state", "spool"):
            (self.root / sub).mkdir()
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(_config(self.root, host))
        self._start("munged", "--foreground", "--force", f"--key-file={key}", f"--socket={munge}/munge.socket",
                    f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
                    f"--seed-file={munge}/munged.seed")
        self._wait(lambda: (munge / "munge.socket").exists(), "munged")
        self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._start("slurmd", "-D", "-f", str(self.conf))
        self._wait(self._node_idle, "slurmctld and slurmd")

    def _node_idle(self) -> bool:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env(), capture_output=True, text=True)
        return done.returncode == 0 and done.stdout.strip() in ("idle", "mix", "alloc")

    def _wait(self, ready, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self) -> str:
        lines = []
        for path in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out")):
            text = path.read_text(errors="replace").strip().splitlines()
            lines += [f"{path.name}: {line}" for line in text[-3:]]
        return " | ".join(lines)

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "--user", "root"], env=self.env(), capture_output=True)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def unavailable() -> str | None:
    """Why no cluster can be started here, or None."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} not on PATH; .ci/run installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "slurmctld and slurmd run as root in the test cluster, and these tests do not run as root"
    return None


def start_cluster() -> Cluster:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="msda-slurm-")))
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def slurm_cluster():
    """The session's cluster, with SLURM_CONF set for this process and every process it starts."""
    reason = unavailable()
    if reason is None:
        try:
            cluster = start_cluster()
        except (OSError, RuntimeError) as e:
            reason = f"slurmctld and slurmd could not be started: {e}"
    if reason is not None:
        if os.environ.get("MSDA_TEST_SLURM") == "required":
            pytest.fail(f"MSDA_TEST_SLURM=required, but {reason}")
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(cluster.conf))
        try:
            yield cluster
        finally:
            cluster.stop()
