"""Runs in parallel on one machine (`msda train --jobs N --gpus 0,1,… --gpus-per-run K`).

Each slot (a GPU, or a share of the CPU cores) has one persistent worker (engine/worker.py): a
process started once, with the slot's CUDA_VISIBLE_DEVICES or its share of the cores (OMP_NUM_THREADS
and MKL_NUM_THREADS, which torch reads when it starts), that trains the runs handed to it one after
another through `msda train ARGS` for exactly one run: the same entry point as a run trained in
this process, so a run trains alike however it was launched, and start-up is paid once per slot.
A run on K GPUs is its own process group, `accelerate launch --num_processes K -m msda_cli train
ARGS`, one per run (the group's processes and rendezvous belong to that run).

The caller checks every config before the first run starts (`train_in_parallel` does), so
bad input writes nothing. New runs get their ids here (`--run-id`), so the launcher knows which
store row is whose before the run writes it, and follows the runs by polling the store rather
than a pipe protocol: the per-epoch rows the runs write are the truth, a process that dies
cannot leave a stale last message behind, a run on K processes has one writer, and nothing is
parsed from what runs print (that goes to `runs/<id>/console.log`); a worker reports only each
run's exit status. SIGINT or SIGTERM forwards SIGTERM to every process training a run (each marks
its run interrupted, resumable with `msda train --resume ID`), then SIGKILL after a grace period
(the store then shows the run, whose process is gone, as interrupted too); a second signal kills
at once.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from msda_cli.engine.parallel_view import RunProgress
from msda_cli.engine.worker import Worker
from msda_cli.checks import check_int
from msda_cli.errors import MsdaError, RunFailed
from msda_cli.grid import grid_keys, point_label, point_of
from msda_cli.metric_names import TEST_TOP1, TRAIN, TRAIN_LOSS
from msda_cli.store.progress import read_progress

GRACE_SECONDS = 30.0  # after SIGTERM, time for a child to store its run as interrupted
POLL_SECONDS = 0.5
CONSOLE_LOG = "console.log"


# ----- where children run ------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One place a child runs: its GPUs (CUDA_VISIBLE_DEVICES entries; none on the CPU) and threads."""

    gpus: tuple[str, ...]
    threads: int

    @property
    def where(self) -> str:
        if self.gpus:
            return f"GPU {','.join(self.gpus)}"
        return f"CPU, {self.threads} thread{'s' if self.threads > 1 else ''}"


def plan_slots(jobs: int | None, gpus: list[int] | None, gpus_per_run: int | None, cpu: bool = False,
               n_visible: int | None = None, threads: int | None = None) -> list[Slot]:
    """One slot per child running at a time; MsdaError on bad input.

    GPUs: `gpus` (default every visible one) in groups of `gpus_per_run` (default 1); `jobs`
    defaults to one slot per group; with more jobs than groups, slots share a group. Each of the `jobs`
    slots gets max(1, C // jobs) torch threads of the C cores given (`threads`, default
    `config.cores_given()`: OMP_NUM_THREADS where set, else the cores this process may run on).
    """
    import torch

    from msda_cli.config import cores_given

    if jobs is not None:
        check_int("--jobs", jobs, min=1)
    if gpus_per_run is not None:
        check_int("--gpus-per-run", gpus_per_run, min=1)
    n_visible = 0 if cpu else (torch.cuda.device_count() if n_visible is None else n_visible)
    threads = cores_given() if threads is None else threads
    if n_visible == 0:
        if gpus is not None or gpus_per_run is not None:
            flag = "--gpus" if gpus is not None else "--gpus-per-run"
            raise MsdaError(f"{flag} needs GPUs, but {'--cpu was given' if cpu else 'no GPU is visible'}")
        jobs = jobs or 1
        return [Slot((), max(1, threads // jobs))] * jobs
    gpus = list(range(n_visible)) if gpus is None else gpus
    if not gpus:
        raise MsdaError("--gpus names no GPU")
    for g in gpus:
        if not 0 <= g < n_visible:
            raise MsdaError(f"--gpus: there is no GPU {g} (visible: {', '.join(map(str, range(n_visible)))})")
        if gpus.count(g) > 1:
            raise MsdaError(f"--gpus names GPU {g} twice")
    per_run = gpus_per_run or 1
    if per_run > len(gpus):
        raise MsdaError(f"--gpus-per-run {per_run} exceeds the {len(gpus)} GPU(s) given")
    # `--gpus` counts the GPUs this process sees; a child's CUDA_VISIBLE_DEVICES names the same ones.
    inherited = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    names = inherited if len(inherited) >= n_visible else [str(i) for i in range(n_visible)]
    groups = [tuple(names[g] for g in gpus[i:i + per_run]) for i in range(0, len(gpus) - per_run + 1, per_run)]
    jobs = jobs or len(groups)
    return [Slot(groups[i % len(groups)], max(1, threads // jobs)) for i in range(jobs)]


# ----- what children run -------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One child: the `msda train` arguments of exactly one run (a new run with `--run-id ID`, or
    `--resume ID`), that run's id, and what to call it on screen."""

    args: tuple[str, ...]
    run_id: str
    label: str
    epochs: int


def run_label(method: str, arch: str, seed: int, point: str = "") -> str:
    """`mixup · mlp · seed 0`, and the grid point (`alpha=0.1`) where the request has a grid."""
    return f"{method} · {arch} · seed {seed}" + (f" · {point}" if point else "")


def request_args(req) -> list[str]:
    """The `msda train` options that make the TrainRequest `req` (what the command line parses)."""
    args = ["--recipe", req.recipe]
    for flag, values in (("--method", req.methods), ("--arch", req.archs), ("--seeds", req.seeds)):
        if values:
            args += [flag, ",".join(map(str, values))]
    if req.epochs is not None:
        args += ["--epochs", str(req.epochs)]
    for item in req.sets:
        args += ["--set", item]
    for item in req.grid:
        args += ["--grid", item]
    if req.data_dir is not None:
        args += ["--data-dir", req.data_dir]
    if req.download:
        args.append("--download")
    if req.subset_id is not None:
        args += ["--subset", req.subset_id]
    if req.run_id is not None:
        args += ["--run-id", req.run_id]
    if req.name is not None:
        args += ["--name", req.name]
    for tag in req.tags:
        args += ["--tag", tag]
    return args


def new_run_specs(req, configs) -> list[RunSpec]:
    """One spec per resolved config of `req`: the request narrowed to that config's method, arch
    and seed (only along the lists the request gave, so the child resolves the same config)."""
    from msda_cli.store import new_id

    if req.run_id is not None:
        raise MsdaError("--run-id names the one run of a child; the launcher gives each run its id")
    specs, keys = [], grid_keys(req.grid)
    for cfg in configs:
        dump = json.loads(cfg.model_dump_json())  # its grid point: one value of each --grid key
        one = replace(req, methods=[cfg.method] if req.methods else [], archs=[cfg.arch] if req.archs else [],
                      seeds=[cfg.seed] if req.seeds else [], grid=point_of(dump, keys), run_id=new_id())
        specs.append(RunSpec(tuple(request_args(one)), one.run_id,
                             run_label(cfg.method, cfg.arch, cfg.seed, point_label(dump, keys)), cfg.epochs))
    return specs


def resume_spec(run) -> RunSpec:
    """The spec that continues a stored run (a `run` row) from its last checkpoint."""
    return RunSpec(("--resume", run.id), run.id, run_label(run.method, run.arch, run.seed),
                   json.loads(run.config).get("epochs", 0))


def train_argv(spec: RunSpec, slot: Slot, db: Path) -> list[str]:
    """The `msda` arguments that train `spec` in `slot` (a worker runs them in-process)."""
    return ["train", *spec.args, "--db", str(db), *([] if slot.gpus else ["--cpu"])]


def child_command(spec: RunSpec, slot: Slot, db: Path, port: int | None = None) -> list[str]:
    """The command line that trains `spec` in `slot` in a process of its own; `port` for K > 1 GPUs."""
    train = ["-m", "msda_cli", *train_argv(spec, slot, db)]
    if len(slot.gpus) <= 1:
        return [sys.executable, *train]
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(len(slot.gpus)),
            "--num_machines", "1", "--multi_gpu", "--main_process_port", str(port), "--dynamo_backend", "no", *train]


def child_env(slot: Slot, environ=os.environ) -> dict[str, str]:
    env = dict(environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(slot.threads)
    if slot.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(slot.gpus)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now: a multi-GPU child's process group (children must not share one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----- running them ------------------------------------------------------------------------
@dataclass
class RunOutcome:
    spec: RunSpec
    progress: RunProgress  # the run as it ended: status, epochs done, loss, test top-1, error
    returncode: int | None  # None: the child never started
    stopped: bool = False  # a signal to the launcher stopped this run or kept it from starting

    @property
    def status(self) -> str:
        return self.progress.status


@dataclass
class _Child:
    """A run being trained: by the slot's worker, or (K > 1 GPUs) by a process group of its own."""

    spec: RunSpec
    slot: int
    proc: subprocess.Popen  # the worker, or the run's own process (the group's leader)
    worker: Worker | None
    log: Path
    started: float
    first_epoch: int

    def exit_status(self) -> int | None:
        """The run's exit status once it ended, else None."""
        return self.worker.status() if self.worker is not None else self.proc.poll()


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


class _Launcher:
    def __init__(self, specs: list[RunSpec], slots: list[Slot], store, display, grace_s: float):
        self.specs, self.slots, self.store, self.display, self.grace_s = specs, slots, store, display, grace_s
        self.queue = deque(specs)
        self.free = list(range(len(slots)))
        self.active: list[_Child] = []
        self.workers: dict[int, Worker] = {}  # slot index -> its worker (slots of at most one GPU)
        self.views: dict[str, RunProgress] = {}
        self.returncodes: dict[str, int | None] = {}
        for spec in specs:
            run = self._stored(spec.run_id)  # a resumed run starts from the epochs it has
            self.views[spec.run_id] = RunProgress(spec.label, spec.run_id, epochs=spec.epochs,
                                                  epoch=run.epochs_done if run else 0)
        self.signals = 0
        self.stopped_at: float | None = None
        self.stopped: set[str] = set()

    def _stored(self, run_id: str):
        try:
            run = self.store.get_run(run_id)
        except MsdaError:
            return None
        return run if run.id == run_id else None

    def _on_signal(self, signum, frame) -> None:
        self.signals += 1

    def run(self) -> list[RunOutcome]:
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.queue or self.active:
                self._step()
                if self.queue or self.active:
                    time.sleep(POLL_SECONDS)
        except BaseException:  # never leave processes behind, whatever stopped this loop
            for child in self.active:
                _send(child.proc, signal.SIGTERM, group=False)
            self._end_workers(time.monotonic() + self.grace_s, [child.proc for child in self.active])
            raise
        else:
            self._end_workers(time.monotonic() + self.grace_s, [])
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return [RunOutcome(s, self.views[s.run_id], self.returncodes.get(s.run_id), s.run_id in self.stopped)
                for s in self.specs]

    def _end_workers(self, deadline: float, busy: list[subprocess.Popen]) -> None:
        """Close every worker (idle ones exit at once) and wait for them and the `busy` processes until `deadline`,
        then kill what is left."""
        for worker in self.workers.values():
            worker.close()
        for proc in busy + [w.proc for w in self.workers.values()]:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _send(proc, signal.SIGKILL, group=True)
                proc.wait()
        for worker in self.workers.values():
            worker.release()
        self.workers.clear()

    def _step(self) -> None:
        if self.signals and self.stopped_at is None:
            self.stopped_at = time.monotonic()
            for child in self.active:
                _send(child.proc, signal.SIGTERM, group=False)  # an accelerate launcher forwards it
                self.stopped.add(child.spec.run_id)
            for worker in self.workers.values():
                worker.close()  # an idle one exits now, a busy one once its run is stored interrupted
            while self.queue:
                run_id = self.queue.popleft().run_id
                self.views[run_id].status = "not started"
                self.stopped.add(run_id)
        if self.stopped_at is not None and (self.signals > 1 or time.monotonic() - self.stopped_at > self.grace_s):
            for child in self.active:
                _send(child.proc, signal.SIGKILL, group=True)
        while self.queue and self.free:
            self._start(self.queue.popleft(), self.free.pop(0))
        for child in list(self.active):
            status = child.exit_status()
            if status is not None:
                self.active.remove(child)
                self.free.append(child.slot)
                self.returncodes[child.spec.run_id] = status
                if child.worker is not None and status != 0:  # it ends its worker: the slot gets a fresh one
                    self._retire(child.slot)
            self._observe(child, status)
        if self.display is not None:
            self.display.update(list(self.views.values()))

    def _start(self, spec: RunSpec, slot_index: int) -> None:
        slot = self.slots[slot_index]
        view = self.views[spec.run_id]
        view.status, view.where = "starting", slot.where
        db, db_env = self.store.target.for_child()  # a password goes by PGPASSWORD, not the logged command
        command = child_command(spec, slot, db, free_port() if len(slot.gpus) > 1 else None)
        env = {**child_env(slot), **db_env}
        log_path = self.store.run_dir(spec.run_id) / CONSOLE_LOG
        log_path.parent.mkdir(parents=True, exist_ok=True)
        worker = self.workers.get(slot_index)
        devices = f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} " if slot.gpus else ""
        where = "" if len(slot.gpus) > 1 else f"(worker {worker.proc.pid if worker else 'started now'}) "
        with open(log_path, "a") as log:
            log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {devices}OMP_NUM_THREADS={slot.threads} "
                      f"{where}{shlex.join(command)}\n")
        if len(slot.gpus) > 1:
            with open(log_path, "a") as log:
                proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        else:
            worker = self._hand(slot_index, worker, env, train_argv(spec, slot, db), log_path)
            proc = worker.proc
        self.active.append(_Child(spec, slot_index, proc, worker, log_path, time.monotonic(), view.epoch))

    def _retire(self, slot_index: int) -> None:
        """Wait for the slot's worker to exit, as it does after a run that did not finish cleanly."""
        worker = self.workers.pop(slot_index)
        worker.close()
        try:
            worker.proc.wait(self.grace_s)
        except subprocess.TimeoutExpired:
            _send(worker.proc, signal.SIGKILL, group=True)
            worker.proc.wait()
        worker.release()

    def _hand(self, slot_index: int, worker: Worker | None, env: dict[str, str], argv: list[str],
              log: Path) -> Worker:
        """Hand a run to the slot's worker, starting a fresh one if it has none or its worker has just gone."""
        for _ in range(2):
            if worker is None:
                worker = self.workers[slot_index] = Worker(env, log)
            try:
                worker.hand(argv, log)
                return worker
            except BrokenPipeError:  # it exited between two runs: the run did not start
                worker.proc.wait()
                worker.release()
                worker = None
        raise RunFailed("a fresh worker process exited before it could take a run")

    def _observe(self, child: _Child, status: int | None) -> None:
        """Bring the child's view up to date from the store (its final state once it ended with `status`)."""
        view = self.views[child.spec.run_id]
        run = self._stored(child.spec.run_id)
        if run is not None and run.epochs_done != view.epoch:
            per_epoch: dict[int, dict[str, float]] = {}
            for m in self.store.metrics(run.id, TRAIN):
                if m.epoch is not None:
                    per_epoch.setdefault(m.epoch, {})[m.name] = m.value
            for epoch in range(view.epoch, run.epochs_done):  # 0-based indices of the epochs just done
                values = per_epoch.get(epoch, {})
                view.epoch_log.append((epoch + 1, values.get(TRAIN_LOSS), values.get(TEST_TOP1)))
            view.epoch = run.epochs_done
            view.loss, view.top1 = view.epoch_log[-1][1:] if view.epoch_log else (None, None)
            child.first_epoch = min(child.first_epoch, view.epoch)  # a resume restarts at its last checkpoint
            trained = view.epoch - child.first_epoch
            if trained > 0:
                view.eta_s = (time.monotonic() - child.started) / trained * (view.epochs - view.epoch)
        if status is None:
            view.status = "running" if run is not None and run.status == "running" else "starting"
            live = read_progress(self.store.run_dir(run.id)) if view.status == "running" else None
            view.step = f"{live['step']}/{live['steps']}" if live and live["epoch"] == view.epoch else ""
            view.eta_s = live["eta_s"] if live and live.get("eta_s") is not None else view.eta_s  # within the epoch
            return
        view.eta_s = None
        if run is None:  # the run stopped before it stored its row
            stopped = self.stopped_at is not None
            view.status = "not started" if stopped else "failed"
            view.error = None if stopped else _last_line(child.log) or f"exit status {status}"
        else:
            # A row still `running` after its run ended: its process (a worker) lives on, the run does not.
            view.status = "interrupted" if run.status == "running" else run.status
            if run.status == "failed":
                text = run.error or _last_line(child.log)
                view.error = text.splitlines()[0] if text else f"exit status {status}"
        view.log = str(child.log)


def _send(proc: subprocess.Popen, sig: int, group: bool) -> None:
    try:
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
    except ProcessLookupError:
        pass


def run_parallel(specs: list[RunSpec], db=None, jobs: int | None = None, gpus: list[int] | None = None,
                 gpus_per_run: int | None = None, cpu: bool = False, display=None,
                 grace_s: float = GRACE_SECONDS) -> list[RunOutcome]:
    """Train every spec in its own child, `jobs` at a time (see `plan_slots`), until all have ended
    or a signal stops them; returns each spec's outcome, in order. `display.update(progress)` is
    called about twice a second. The launcher options are checked before anything is written."""
    from msda_cli.store import Store

    slots = plan_slots(jobs, gpus, gpus_per_run, cpu)
    return _Launcher(list(specs), slots, Store(db), display, grace_s).run()


def train_in_parallel(req, db, jobs: int | None, gpus: list[int] | None, gpus_per_run: int | None, cpu: bool,
                      console, out, fmt: str = "rich") -> int:
    """`msda train` with launcher options: check every run, train them in parallel with the live view
    on `console`, print the summary on `out` in `fmt`; returns the exit status: 130 when a signal
    stopped them, else 1 if any run did not finish."""
    from msda_cli.engine.launch import check_data, check_subset, resolve_configs
    from msda_cli.engine.parallel_view import make_view, print_summary
    from msda_cli.store import Store

    configs = resolve_configs(req)
    check_data(configs)
    plan_slots(jobs, gpus, gpus_per_run, cpu)
    if req.subset_id is not None:
        check_subset(Store(db, create=False), req.subset_id, configs)
    specs = new_run_specs(req, configs)
    view = make_view(console)
    try:
        outcomes = run_parallel(specs, db, jobs=jobs, gpus=gpus, gpus_per_run=gpus_per_run, cpu=cpu, display=view)
    finally:
        view.close()
    print_summary([o.progress for o in outcomes], out, fmt, notes=console)
    if any(o.stopped for o in outcomes):
        return 130
    return 0 if all(o.status == "finished" for o in outcomes) else 1
