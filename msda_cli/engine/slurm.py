"""Runs on a Slurm cluster (`--launcher slurm`): one job array through submitit, one task per run.

Submission checks everything first (the runs' configs and data, the Slurm options), then creates
every run row (`interrupted`, owned by nobody, its config stored) and submits the array; if
sbatch refuses it (a partition, account or QOS Slurm rejects) the rows and folders are removed
again, so bad input writes nothing. Each row records its task's job id (`slurm_job`, e.g.
`1234_0`), and each task runs `msda train --resume RUN_ID`: the same entry point, and the same
child command, as a run of the local parallel launcher (`engine/parallel.py`), through
`accelerate launch` on a run of several GPUs or nodes.

The task is a `submitit.helpers.Checkpointable`. Slurm signals USR2 shortly before the time limit
and on preemption; submitit then calls `checkpoint`, which stops the training child with SIGTERM
(it stores the run `interrupted` at its last checkpoint) and hands submitit the same task to
requeue. The requeued task takes over its run under the same id (`Store.take_over`; a row its own
job left `running` is released first, since one job never runs twice at once) and resumes it.
Slurm's output of a task lands in its run folder (`slurm.out`, `slurm.err`), through a per-array
folder of links from the task index to the run folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace

import submitit

from msda_cli.engine.parallel import Slot, child_command, child_env, resume_spec
from msda_cli.errors import MsdaError

# A requeue after a time-out counts against submitit's limit; runs are meant to be resumed until done.
MAX_REQUEUES = 10_000
ARRAY_FOLDER = "slurm"  # <results>/slurm/<array>/: submitit's pickles, and the task -> run folder links
STDOUT, STDERR = "slurm.out", "slurm.err"
POLL_SECONDS = 2.0
STOP_SECONDS = 60.0  # within the 90 s between Slurm's USR2 and the end of the job: the trainer stores its run
# Options msda sets itself for every array (its command, output and task layout), and those with flags of their own.
_MSDA_SET = {"additional_parameters", "ntasks_per_node", "stderr_to_stdout", "use_srun"}
_OWN_FLAGS = {"array_parallelism": "--max-parallel", "nodes": "--nodes", "cpus_per_task": "--cpus-per-run",
              "gpus_per_node": "--gpus-per-run", "num_gpus": "--gpus-per-run", "time": "--time", "mem": "--mem",
              "partition": "--partition", "account": "--account", "qos": "--qos"}
_LIST_OPTIONS = {"setup", "teardown", "srun_args"}  # submitit takes lists: one item per --slurm-opt
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
_MEM = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
_ACTIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")


@dataclass
class SlurmOptions:
    """What `--launcher slurm` asks Slurm for, per run (one array task each)."""

    partition: str | None = None
    # Slurm's formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS; a longer run is requeued and resumed
    time: str = "60"
    gpus_per_run: int | None = None
    cpus_per_run: int = 1
    mem: str | None = None  # e.g. 16G
    account: str | None = None
    qos: str | None = None
    max_parallel: int | None = None  # tasks of the array running at once
    nodes: int = 1
    extra: list[str] = field(default_factory=list)  # --slurm-opt key=value: any SlurmExecutor parameter
    wait: bool = False  # follow the runs to their end (else the submitting command returns)


def time_minutes(text: str) -> int:
    """Slurm's --time formats in whole minutes (rounded up); MsdaError when malformed."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise MsdaError(f"--time {text!r}: give minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")
    days, a, b, c = match.groups()
    a, b, c = int(a), int(b or 0), int(c or 0)
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + a * 3600 + b * 60 + c
    elif c or match.group(4) is not None:  # HH:MM:SS
        seconds = a * 3600 + b * 60 + c
    else:  # MM or MM:SS
        seconds = a * 60 + b
    if seconds <= 0:
        raise MsdaError(f"--time {text!r} is no time at all")
    return -(-seconds // 60)


def _value(text: str):
    """A --slurm-opt value as submitit takes it: integers as numbers, true/false as flags."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return int(text) if text.isdigit() else text


def executor_parameters(opts: SlurmOptions) -> dict:
    """submitit's SlurmExecutor parameters for `opts`; MsdaError on a bad one (nothing is submitted)."""
    from msda_cli.checks import check_int

    if shutil.which("sbatch") is None:
        raise MsdaError("--launcher slurm: no sbatch on PATH; submit from a Slurm login node")
    check_int("--cpus-per-run", opts.cpus_per_run, min=1)
    check_int("--nodes", opts.nodes, min=1)
    params = dict(job_name="msda", nodes=opts.nodes, ntasks_per_node=1, cpus_per_task=opts.cpus_per_run)
    if opts.gpus_per_run is not None:
        check_int("--gpus-per-run", opts.gpus_per_run, min=1)
        params["gpus_per_node"] = opts.gpus_per_run
    if opts.max_parallel is not None:
        check_int("--max-parallel", opts.max_parallel, min=1)
        params["array_parallelism"] = opts.max_parallel
    params["time"] = time_minutes(opts.time)
    if opts.mem is not None:
        if not _MEM.fullmatch(opts.mem):
            raise MsdaError(f"--mem {opts.mem!r}: give a size such as 4000M or 16G")
        params["mem"] = opts.mem.upper()
    params.update({k: v for k, v in (("partition", opts.partition), ("account", opts.account), ("qos", opts.qos))
                   if v is not None})
    valid = submitit.SlurmExecutor._valid_parameters() - _MSDA_SET - set(_OWN_FLAGS)
    for item in opts.extra:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise MsdaError(f"--slurm-opt {item!r}: give key=value")
        if key in _OWN_FLAGS:
            raise MsdaError(f"--slurm-opt {key}: give {_OWN_FLAGS[key]} instead")
        if key not in valid:
            raise MsdaError(f"--slurm-opt {key}: not a submitit SlurmExecutor parameter "
                            f"(one of {', '.join(sorted(valid))})")
        if key in _LIST_OPTIONS:
            params.setdefault(key, []).append(value)
        else:
            params[key] = _value(value)
    return params


# ----- inside the job --------------------------------------------------------------------------
def _job_id() -> str | None:
    """This task's job id as Slurm names an array task (ARRAYID_INDEX); None outside a job."""
    array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and index:
        return f"{array}_{index}"
    return os.environ.get("SLURM_JOB_ID")


def _release_own(store, run_id: str, job: str | None) -> None:
    """A row left `running` by an earlier start of this same job (killed without its SIGTERM, on
    another node) belongs to a process that is gone: Slurm runs one instance of a job at a time."""
    from sqlmodel import Session, update

    from msda_cli.store.tables import Run

    run = store.get_run(run_id)
    if job is None or run.slurm_job != job or run.status != "running":
        return
    with Session(store.engine) as s:
        s.exec(update(Run).where(Run.id == run.id, Run.status == "running", Run.lease == run.lease,
                                 Run.slurm_job == job).values(status="interrupted"))
        s.commit()


def _port(job: str | None) -> int:
    """The process group's port: every node of the task computes the same one from the job id."""
    digits = re.sub(r"\D", "", job or "") or "0"
    return 20000 + int(digits) % 20000


def task_command(spec, slot: Slot, db: str, port: int, nodes: int, node_rank: int, main_host: str) -> list[str]:
    """What a task runs on its node: the local launcher's child command (`engine/parallel.py`), or across
    `nodes` machines one `accelerate launch` per node, each told its rank and the first node's address."""
    command = child_command(spec, slot, db, port)
    if nodes == 1:
        return command
    train = command[command.index("msda_cli") - 1:]  # -m msda_cli train ARGS
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(max(1, len(slot.gpus)) * nodes),
            "--num_machines", str(nodes), "--machine_rank", str(node_rank), "--main_process_ip", main_host,
            "--main_process_port", str(port), "--multi_gpu", "--dynamo_backend", "no", *train]


class SlurmTask(submitit.helpers.Checkpointable):
    """One array task: trains run `run_id` of the store at `db` in a child process."""

    def __init__(self, run_id: str, db: str, gpus: int, nodes: int, threads: int):
        self.run_id, self.db, self.gpus, self.nodes, self.threads = run_id, db, gpus, nodes, threads
        self._child: subprocess.Popen | None = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_child"}

    def __setstate__(self, state):
        self.__dict__.update(state, _child=None)

    def __call__(self) -> str:
        from msda_cli.store import Store

        env = submitit.JobEnvironment()
        store = Store(self.db)
        job = _job_id()
        if env.global_rank == 0:
            _release_own(store, self.run_id, job)
        run = store.get_run(self.run_id)
        if run.status == "finished":  # a requeue that came after the finish: nothing left to train
            return self.run_id
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        slot = Slot(tuple(visible[:self.gpus]) if self.gpus else (), self.threads)
        spec = resume_spec(run)
        command = task_command(spec, slot, self.db, _port(job), self.nodes, env.node, env.hostnames[0])
        sys.stdout.flush()
        # USR2 is the job's warning to this process (submitit calls `checkpoint`), not to the trainer.
        self._child = subprocess.Popen(command, env=child_env(slot), stdin=subprocess.DEVNULL,
                                       preexec_fn=lambda: signal.signal(signal.SIGUSR2, signal.SIG_IGN))
        # Polled, not waited on: `checkpoint` runs in a signal handler here and must be able to reap the child.
        while (code := self._child.poll()) is None:
            time.sleep(0.5)
        if code != 0:
            raise RuntimeError(f"msda train --resume {self.run_id} exited with status {code}")
        return self.run_id

    def checkpoint(self):
        """Stop the trainer (it stores the run interrupted at its last checkpoint), then requeue this task."""
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if child.poll() is None:  # the store then shows its dead owner's run as interrupted
                child.kill()
        return submitit.helpers.DelayedSubmission(SlurmTask(self.run_id, self.db, self.gpus, self.nodes,
                                                            self.threads))


# ----- submitting ------------------------------------------------------------------------------
@dataclass
class Submitted:
    run_id: str
    job: str
    label: str
    epochs: int


def _with_threads(req, threads: int):
    """The request with torch threads set to the CPUs of its task, unless it sets them itself."""
    if any(item.split("=", 1)[0].strip() == "threads" for item in req.sets):
        return req
    return replace(req, sets=[*req.sets, f"threads={threads}"])


def prepare_new(req, db, opts: SlurmOptions) -> list:
    """The checked configs of a new request's runs, as a Slurm task of `opts` trains them: [(req, cfg)]."""
    from msda_cli.engine.launch import check_data, check_subset, resolve_configs
    from msda_cli.store import Store

    req = _with_threads(req, opts.cpus_per_run)
    configs = resolve_configs(req)
    check_data(configs)
    if req.subset_id is not None:
        check_subset(Store(db, create=False), req.subset_id, configs)
    return [(req, cfg) for cfg in configs]


def job_states(jobs: list[str]) -> dict[str, str] | None:
    """{job id: Slurm state} of those of these jobs Slurm still knows, from one squeue call; None when
    squeue cannot be asked (not on PATH, or the controller does not answer)."""
    if not jobs:
        return {}
    try:
        done = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    states = {}
    for line in done.stdout.splitlines():
        job, _, state = line.partition("|")
        states[job.strip()] = state.strip()
    return {j: states[j] for j in jobs if j in states}


def _queued(state: str | None) -> bool:
    return state in _ACTIVE_STATES


def submit(new: list, resumed: list, db, opts: SlurmOptions, params: dict | None = None) -> list[Submitted]:
    """Create the rows of the `new` runs ([(req, cfg)] from `prepare_new`), then submit one array of
    them and the `resumed` run rows; rows and folders are removed again if sbatch refuses it."""
    from msda_cli.store import Store, new_id

    params = executor_parameters(opts) if params is None else params
    store = Store(db)
    states = job_states([r.slurm_job for r in resumed if r.slurm_job]) or {}
    for run in resumed:
        if _queued(states.get(run.slurm_job)):
            raise MsdaError(f"run {run.id} is already in Slurm's queue as job {run.slurm_job} "
                            f"({states[run.slurm_job].lower()})")
    created = []
    try:
        for req, cfg in new:
            run_id = new_id()
            created.append(run_id)
            _create_row(store, run_id, req, cfg)
        runs = [store.get_run(run_id) for run_id in created] + [store.get_run(r.id) for r in resumed]
        jobs = _submit_array(store, runs, params, opts)
    except BaseException:
        for run_id in created:
            store.delete_run(run_id)
            shutil.rmtree(store.run_dir(run_id), ignore_errors=True)
        raise
    for run, job in zip(runs, jobs):
        store.update_run(run.id, slurm_job=job)
    return [Submitted(run.id, job, resume_spec(run).label, resume_spec(run).epochs) for run, job in zip(runs, jobs)]


def _create_row(store, run_id: str, req, cfg) -> None:
    """The row and folder of a new run that waits in the queue; the fields `msda train` stores for a new run."""
    from msda_cli import __version__
    from msda_cli.engine.launch import run_name
    from msda_cli.store.tags import join_tags

    store.create_run(id=run_id, name=req.name or run_name(cfg, req.grid),
                     tags=join_tags(req.tags), recipe=cfg.name, dataset=cfg.dataset, arch=cfg.arch, method=cfg.method,
                     seed=cfg.seed, config=cfg.model_dump_json(), subset_id=req.subset_id, msda_version=__version__)
    # Nobody owns it until its task starts: `interrupted` is a run that waits to be resumed.
    store.update_run(run_id, status="interrupted", pid=None, pid_started=None, lease=None)
    store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    (store.run_dir(run_id) / "config.json").write_text(json.dumps(json.loads(cfg.model_dump_json()), indent=2))


def _submit_array(store, runs, params: dict, opts: SlurmOptions) -> list[str]:
    from msda_cli.store import new_id

    folder = store.results_dir / ARRAY_FOLDER / new_id()
    links = folder / "tasks"
    links.mkdir(parents=True)
    for index, run in enumerate(runs):
        store.run_dir(run.id).mkdir(parents=True, exist_ok=True)
        (links / str(index)).symlink_to(store.run_dir(run.id).resolve(), target_is_directory=True)
    # One run is a plain job (submitit submits no array of one), whose output path names its folder directly.
    task = store.run_dir(runs[0].id).resolve() if len(runs) == 1 else links / "%a"
    out, err = str(task / STDOUT), str(task / STDERR)
    params = dict(params, additional_parameters={"output": out, "error": err},
                  srun_args=[*params.get("srun_args", []), "--output", out, "--error", err])
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
    # The tasks' --db never holds a password (their pickles are files): it reaches the jobs by PGPASSWORD,
    # in the environment sbatch hands them.
    db, db_env = store.target.for_child()
    try:
        executor.update_parameters(**params)
        tasks = [SlurmTask(run.id, db, opts.gpus_per_run or 0, opts.nodes, opts.cpus_per_run) for run in runs]
        # submitit prints a refusal in full; it is told in one line
        with contextlib.redirect_stderr(io.StringIO()), submitit.core.utils.environment_variables(**db_env):
            jobs = executor.submit_array(tasks)
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError, ValueError) as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise MsdaError(f"sbatch refused the job array: {_sbatch_error(str(e))}") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return [job.job_id for job in jobs]


def _sbatch_error(text: str) -> str:
    """The line of sbatch's complaint in submitit's error (which quotes the command's whole output)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if "error:" in line]
    return (said or lines or ["no reason given"])[0].split("error:", 1)[-1].strip()


# ----- following the runs ---------------------------------------------------------------------
def slurm_column(jobs: list) -> list[str]:
    """The Slurm column of a runs table, 'JOB state' per run with a job (one squeue call for all)."""
    states = job_states([j for j in jobs if isinstance(j, str) and j])
    if states is None:
        return [j if isinstance(j, str) else "" for j in jobs]
    return [f"{j} {states.get(j, 'ended').lower()}" if isinstance(j, str) and j else "" for j in jobs]


def cancel(store, run_ids: list[str]) -> list[tuple[str, str]]:
    """scancel each run's job; wait until its trainer has stored it interrupted. [(run id, job)]."""
    runs = [store.get_run(r) for r in run_ids]
    for run in runs:
        if not run.slurm_job:
            raise MsdaError(f"run {run.id} has no Slurm job; stop a local run with Ctrl-C or SIGTERM")
        if run.status in ("finished", "failed"):
            raise MsdaError(f"run {run.id} already {run.status}; nothing to cancel")
    done = subprocess.run(["scancel", *[r.slurm_job for r in runs]], capture_output=True, text=True)
    if done.returncode != 0:
        raise MsdaError(f"scancel refused: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the trainers store their runs interrupted on Slurm's SIGTERM
        states = job_states([r.slurm_job for r in runs]) or {}
        if not any(_queued(states.get(r.slurm_job)) or store.get_run(r.id).status == "running" for r in runs):
            break
        time.sleep(1.0)
    return [(r.id, r.slurm_job) for r in runs]


def wait(store, submitted: list[Submitted], display) -> list:
    """Follow the runs until each has ended (finished, failed, or interrupted with its job gone), updating
    `display` with the local launcher's view; returns each run's RunProgress."""
    from msda_cli.engine.parallel_view import RunProgress
    from msda_cli.metric_names import TEST_TOP1, TRAIN, TRAIN_LOSS

    views = {s.run_id: RunProgress(s.label, s.run_id, where=f"job {s.job}", epochs=s.epochs) for s in submitted}
    started: dict[str, tuple[float, int]] = {}
    while True:
        states = job_states([s.job for s in submitted])
        if states is None:  # squeue did not answer this time: ask again
            time.sleep(POLL_SECONDS)
            continue
        for s in submitted:
            view, run = views[s.run_id], store.get_run(s.run_id)
            if run.epochs_done != view.epoch:
                per_epoch: dict[int, dict[str, float]] = {}
                for m in store.metrics(run.id, TRAIN):
                    if m.epoch is not None:
                        per_epoch.setdefault(m.epoch, {})[m.name] = m.value
                view.epoch_log += [(e + 1, per_epoch.get(e, {}).get(TRAIN_LOSS), per_epoch.get(e, {}).get(TEST_TOP1))
                                   for e in range(view.epoch, run.epochs_done)]
                view.epoch = run.epochs_done
                view.loss, view.top1 = view.epoch_log[-1][1:] if view.epoch_log else (None, None)
            state = states.get(s.job)
            if run.status == "running":
                begun, first = started.setdefault(s.run_id, (time.monotonic(), view.epoch))
                if view.epoch > first:
                    view.eta_s = (time.monotonic() - begun) / (view.epoch - first) * (view.epochs - view.epoch)
                view.status = "running"
            elif run.status == "interrupted" and _queued(state):
                started.pop(s.run_id, None)
                view.status = "starting" if state == "RUNNING" else "queued"
            else:
                view.status, view.eta_s = run.status, None
                if run.status == "failed" and run.error:
                    view.error = run.error.splitlines()[0]
                view.log = str(store.run_dir(run.id) / STDERR)
        if display is not None:
            display.update(list(views.values()))
        ended = all(v.status in ("finished", "failed", "interrupted") for v in views.values())
        if ended and not any(_queued(states.get(s.job)) for s in submitted):  # and each task is done with its job
            return list(views.values())
        time.sleep(POLL_SECONDS)


def print_jobs(submitted: list[Submitted], out, db) -> None:
    """What the submitting command prints: each run and its job, and how to follow them."""
    from msda_cli.store.url import parse

    db_flag = f" --db {parse(db).shown()}" if db is not None else ""
    for s in submitted:
        out.print(f"run {s.run_id} ({s.label}): Slurm job {s.job}", markup=False, highlight=False, soft_wrap=True)
    arrays = sorted({s.job.split("_")[0] for s in submitted})
    out.print(f"submitted job array {', '.join(arrays)}; follow it with `msda runs list{db_flag}`, "
              f"stop a run with `msda runs cancel ID{db_flag}`", markup=False, highlight=False, soft_wrap=True)


def run_request(req, db, opts: SlurmOptions, console, out) -> int:
    """`msda train … --launcher slurm [--wait]`: check, submit, print the jobs; with `opts.wait`, follow the
    runs with the live view and print the summary. Returns the exit status (1 if a run did not finish)."""
    params = executor_parameters(opts)
    submitted = submit(prepare_new(req, db, opts), [], db, opts, params)
    print_jobs(submitted, out, db)
    return follow(submitted, db, console, out) if opts.wait else 0


def resubmit(run_id: str, db, opts: SlurmOptions, console, out) -> int:
    """`msda train --resume ID --launcher slurm`: the stored run continues in a job of its own."""
    from msda_cli.store import Store

    params = executor_parameters(opts)
    submitted = submit([], [Store(db, create=False).resumable(run_id)], db, opts, params)
    print_jobs(submitted, out, db)
    return follow(submitted, db, console, out) if opts.wait else 0


def launch_planned(new_requests: list, resumed: list, db, opts: SlurmOptions, console, out) -> int | None:
    """`msda reproduce --launcher slurm`: one array of a table's missing runs (new requests, stored runs to
    resume; those already in Slurm's queue stay there). Returns None to go on (the runs were waited for),
    else the exit status: 0 once submitted without `opts.wait`, 130 if a signal stopped the waiting."""
    params = executor_parameters(opts)
    states = job_states([r.slurm_job for r in resumed if r.slurm_job]) or {}
    for run in resumed:
        if _queued(states.get(run.slurm_job)):
            out.print(f"run {run.id} waits in Slurm's queue already (job {run.slurm_job})", highlight=False)
    resumed = [r for r in resumed if not _queued(states.get(r.slurm_job))]
    new = [one for req in new_requests for one in prepare_new(req, db, opts)]
    submitted = submit(new, resumed, db, opts, params) if new or resumed else []
    print_jobs(submitted, out, db) if submitted else None
    if not opts.wait:
        out.print("run this `msda reproduce` again once the jobs have ended: it measures the runs and prints "
                  "the table", highlight=False)
        return 0
    code = follow(submitted, db, console, out) if submitted else 0
    return 130 if code == 130 else None


def follow(submitted: list[Submitted], db, console, out) -> int:
    from msda_cli.engine.parallel_view import make_view, print_summary
    from msda_cli.store import Store

    view = make_view(console)
    try:
        runs = wait(Store(db), submitted, view)
    except KeyboardInterrupt:
        view.close()
        out.print("stopped waiting; the jobs go on (`msda runs cancel ID` stops one)", highlight=False)
        return 130
    view.close()
    print_summary(runs, out)
    return 0 if all(r.status == "finished" for r in runs) else 1
