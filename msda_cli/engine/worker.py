"""A persistent worker: one process per launcher slot, training the runs handed to it one after another.

The parallel launcher (`engine/parallel.py`) starts one worker per slot, with the slot's
CUDA_VISIBLE_DEVICES and thread count, so the start-up of a process (importing torch, Accelerate
and the package: seconds) is paid once per slot, not once per run. A run is handed over as one
JSON line on the worker's stdin: `{"argv": [...], "log": PATH}`, the `msda train` arguments of
exactly one run and its console log. The worker points its stdout and stderr (file descriptors 1
and 2, so output from C code goes there too) at that log, runs the arguments through the command
line's own entry point, in this process, and writes the exit status as one line on its reply pipe.
End of stdin ends the worker.

Each run starts from the state a fresh process has: the environment as the worker got it, no
Accelerate state (its singletons would keep the previous run's mixed precision), the slot's torch
threads, no compiled graphs, no fault-point counts (tests count per process). Every run seeds its
own RNGs (`fit`). The data sets' caches of decoded source tensors (digits, speech-commands) stay:
they are functions of their arguments alone, and no run writes into them (the loader and the device
pipeline gather new batch tensors from them). A run that did not
finish cleanly (any exit status but 0) ends its worker after the reply, so whatever it left
behind (a CUDA context after an error, a row its failed store write left `running`) reaches no
other run; the launcher starts a fresh worker for the slot's next run. A worker that dies (SIGKILL,
the OOM killer, a segfault) ends its run with the worker's exit status.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

WORKER_MODULE = "msda_cli.cli.worker"  # `python -m` this: the command line's worker entry point


# ----- in the worker process ----------------------------------------------------------------
def serve(run_command: Callable[[list[str]], int], replies: int) -> None:
    """Run every job read from stdin with `run_command(argv)` (which returns an exit status), replying on fd
    `replies`; returns at the end of stdin or after a run that did not finish cleanly."""
    import torch

    environ, threads = dict(os.environ), torch.get_num_threads()
    for line in iter(sys.stdin.readline, ""):
        job = json.loads(line)
        fresh_state(environ, threads)
        _output_to(job["log"])
        code = _exit_status(run_command, job["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(replies, f"{code}\n".encode())
        if code != 0:
            return


def fresh_state(environ: dict[str, str], threads: int) -> None:
    """Undo what a run leaves in the process that a fresh process would not have."""
    import torch

    from msda_cli import faults

    os.environ.clear()
    os.environ.update(environ)
    if "accelerate" in sys.modules:
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    torch.set_num_threads(threads)
    if "torch._dynamo" in sys.modules:
        torch._dynamo.reset()
    faults._counts.clear()  # `MSDA_FAULT=NAME@N` counts per process: per run here
    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _output_to(log: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _exit_status(run_command: Callable[[list[str]], int], argv: list[str]) -> int:
    """What a process running `argv` alone would exit with: a traceback on stderr and 1 for an exception."""
    try:
        return run_command(argv)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1


# ----- in the launcher ----------------------------------------------------------------------
class Worker:
    """A worker process as the launcher holds it: hand it a run, then poll for that run's exit status.

    Its own session, as a run's own process would be: a Ctrl-C in the terminal reaches it only as the
    SIGTERM the launcher sends. Its output before the first run goes to that run's log.
    """

    def __init__(self, env: dict[str, str], first_log: Path):
        read, write = os.pipe()
        os.set_blocking(read, False)
        try:
            with open(first_log, "a") as log:
                self.proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(write)], env=env,
                                             stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                             pass_fds=(write,), start_new_session=True, text=True)
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self._replies, self._pending = read, ""
        self._status: int | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def hand(self, argv: list[str], log: Path) -> None:
        """Start one run; BrokenPipeError if the worker has gone (the run did not start)."""
        self._status = None
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self.proc.stdin.flush()

    def status(self) -> int | None:
        """The exit status of the run handed last, once it ended (the worker's own if it died); None while it runs."""
        if self._status is None:
            self._read()
        if self._status is None and not self.alive:
            self._read()  # a reply written just before the worker exited
            if self._status is None:
                self._status = self.proc.returncode
        return self._status

    def _read(self) -> None:
        try:
            chunk = os.read(self._replies, 4096).decode()
        except BlockingIOError:
            return
        self._pending += chunk
        if "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._status = int(line)

    def close(self) -> None:
        """No more runs: the worker exits once its current run (if any) has ended."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def release(self) -> None:
        """Free the launcher's end of the pipes (after the process has ended)."""
        self.close()
        if self._replies is not None:
            os.close(self._replies)
            self._replies = None
