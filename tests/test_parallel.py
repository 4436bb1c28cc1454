"""`msda train --jobs N`: runs in child processes, same results as one process, failures and
signals handled per run, bad launcher options refused before anything is written."""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import fields

import pytest
import torch
from rich.console import Console

from conftest import python_cmd, query
from msda_cli.engine import parallel
from msda_cli.engine.launch import TrainRequest, resolve_configs
from msda_cli.engine.parallel import (Slot, child_command, child_env, new_run_specs, plan_slots, request_args,
                                      run_parallel)
from msda_cli.engine.parallel_view import LineView
from msda_cli.metric_names import EVAL, TEST_TOP1, TRAIN_LOSS

TINY = ["--set", "data.options.image_size=16", "--set", "batch_size=128"]
TINY_SETS = ["data.options.image_size=16", "batch_size=128"]


def _env(results, **extra):
    return {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(results / "msda.db"), "OMP_NUM_THREADS": "1",
            **extra}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _by_setting(db):
    """(method, seed) -> (weights, final eval metrics, per-epoch train rows) of every run in `db`."""
    out = {}
    for run_id, method, seed, ckpt, status in query(db, "SELECT id, method, seed, checkpoint, status FROM run"):
        assert status == "finished", (run_id, status)
        final = dict(query(db, "SELECT name, value FROM metric WHERE run_id=? AND kind=?", run_id, EVAL))
        per_epoch = query(db, "SELECT epoch, name, value FROM metric WHERE run_id=? AND epoch IS NOT NULL "
                              "AND name IN (?, ?) ORDER BY epoch, name", run_id, TRAIN_LOSS, TEST_TOP1)
        out[method, seed] = (torch.load(ckpt, weights_only=True)["model"], final, per_epoch)
    return out


def test_jobs_2_gives_the_weights_and_metrics_of_jobs_1(tmp_path):
    # CPU numerics depend on the thread count, so both sides train with one thread per run: the
    # in-process run by OMP_NUM_THREADS=1, each of the two children by its half of that one thread.
    args = ["train", "--recipe", "digits-mixup", "--method", "vanilla,mixup", "--seeds", "0,1", "--epochs", "2", *TINY]
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    subprocess.run(python_cmd(*args, "--jobs", "1"), env=_env(one), check=True, capture_output=True, timeout=600)
    r = subprocess.run(python_cmd(*args, "--jobs", "2"), env=_env(two), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list((one / "runs").glob("*/console.log"))  # --jobs 1 trains in its own process
    a, b = _by_setting(one / "msda.db"), _by_setting(two / "msda.db")
    assert sorted(a) == sorted(b) == [("mixup", 0), ("mixup", 1), ("vanilla", 0), ("vanilla", 1)]
    for key in a:
        weights_a, final_a, epochs_a = a[key]
        weights_b, final_b, epochs_b = b[key]
        assert weights_a.keys() == weights_b.keys()
        for name in weights_a:
            assert torch.equal(weights_a[name], weights_b[name]), (key, name)
        assert final_a == final_b and epochs_a == epochs_b and len(epochs_a) == 4, key
    ids = [i for (i,) in query(two / "msda.db", "SELECT id FROM run")]
    assert "4 finished · 0 failed" in r.stdout and all(i in r.stdout for i in ids)
    assert r.stderr.count(" epoch 2/2: ") == 4  # outside a terminal: one line per epoch of each run
    for run_id in ids:
        log = (two / "runs" / run_id / "console.log").read_text()
        assert log.startswith("# ") and "OMP_NUM_THREADS=1 " in log and f"--run-id {run_id}" in log


def test_a_child_that_dies_does_not_stop_the_others(db_path):
    class KillTheFirstAfterOneEpoch(LineView):
        """Shows the runs, and SIGKILLs the first one's process once it has stored an epoch (the OOM killer)."""

        def update(self, runs):
            super().update(runs)
            if runs[0].status == "running" and runs[0].epoch >= 1 and not killed:
                killed.extend(query(db_path, "SELECT pid FROM run WHERE id=?", runs[0].run_id)[0])
                os.kill(killed[0], signal.SIGKILL)

    killed = []
    long_req = TrainRequest(recipe="digits-vanilla", epochs=12, sets=TINY_SETS)
    short_req = TrainRequest(recipe="digits-vanilla", seeds=[1, 2], epochs=1, sets=TINY_SETS)
    specs = new_run_specs(long_req, resolve_configs(long_req)) + new_run_specs(short_req, resolve_configs(short_req))
    text = io.StringIO()
    outcomes = run_parallel(specs, db_path, jobs=2, display=KillTheFirstAfterOneEpoch(Console(file=text, width=200)))
    assert killed and [o.status for o in outcomes] == ["interrupted", "finished", "finished"]
    assert [o.returncode for o in outcomes] == [-signal.SIGKILL, 0, 0] and not any(o.stopped for o in outcomes)
    assert 1 <= outcomes[0].progress.epoch < 12
    assert dict(query(db_path, "SELECT id, status FROM run")) == {o.spec.run_id: o.status for o in outcomes}
    lines = text.getvalue()
    assert f"interrupted vanilla · digits-cnn · seed 0 (run {specs[0].run_id})" in lines
    assert lines.count("finished vanilla · digits-cnn · seed ") == 2 and lines.count(" epoch 1/1: ") == 2


def test_a_failing_run_does_not_stop_the_others(db_path, isolated_results, monkeypatch):
    from msda_cli import faults
    from msda_cli.engine import checkpoint  # noqa: F401  (declares its fault points)

    if "checkpoint.renamed" not in faults.FAULT_POINTS:
        pytest.skip("needs the checkpoint.renamed fault point")
    # Every child sees the fault, but only the 2-epoch run reaches a second checkpoint.
    monkeypatch.setenv("MSDA_FAULT", "checkpoint.renamed:error@2")
    long_req = TrainRequest(recipe="digits-vanilla", epochs=2, sets=TINY_SETS)
    short_req = TrainRequest(recipe="digits-vanilla", seeds=[1, 2], epochs=1, sets=TINY_SETS)
    specs = new_run_specs(long_req, resolve_configs(long_req)) + new_run_specs(short_req, resolve_configs(short_req))
    text = io.StringIO()
    outcomes = run_parallel(specs, db_path, jobs=2, display=LineView(Console(file=text, width=200)))
    assert [o.status for o in outcomes] == ["failed", "finished", "finished"]
    assert outcomes[0].returncode == 1 and [o.returncode for o in outcomes[1:]] == [0, 0]
    assert not any(o.stopped for o in outcomes)
    assert "fault injected at checkpoint.renamed" in outcomes[0].progress.error
    assert outcomes[0].progress.epoch == 1  # its first epoch was stored before the failure
    stored = dict(query(db_path, "SELECT id, status FROM run"))
    assert stored == {o.spec.run_id: o.status for o in outcomes}
    lines = text.getvalue()
    assert f"failed vanilla · digits-cnn · seed 0 (run {specs[0].run_id}), 1/2 epochs: RuntimeError" in lines
    assert lines.count("finished vanilla · digits-cnn · seed ") == 2 and lines.count(" epoch 1/1: ") == 2
    assert "0 running · 0 queued" in lines.splitlines()[-1]


def test_sigterm_stops_every_child_and_each_run_resumes(msda, isolated_results, db_path):
    results, db = isolated_results, db_path
    args = ["train", "--recipe", "digits-vanilla", "--seeds", "0,1,2", "--epochs", "16", *TINY, "--jobs", "2"]
    proc = subprocess.Popen(python_cmd(*args), env=_env(results), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 300
    rows = []
    while time.time() < deadline and proc.poll() is None:
        try:
            rows = query(db, "SELECT epochs_done FROM run") if db.exists() else []
        except sqlite3.OperationalError:  # the tables are still being created
            rows = []
        if len(rows) == 2 and min(rows)[0] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    runs = query(db, "SELECT id, status, epochs_done, pid, error FROM run")
    assert len(runs) == 2  # two ran at once, the third was never started
    for run_id, status, epochs_done, pid, error in runs:
        assert (status, error) == ("interrupted", "interrupted by signal") and 1 <= epochs_done < 16
        assert not _alive(pid)
        assert f"msda train --resume {run_id}" in stdout
    assert "not started" in stdout and "2 interrupted" in stdout
    assert msda("train", "--resume", runs[0][0]).code == 0
    assert query(db, "SELECT status, epochs_done FROM run WHERE id=?", runs[0][0]) == [("finished", 16)]


@pytest.mark.parametrize("args,message", [
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--jobs", "2", "--gpus-per-run", "0"], "--gpus-per-run must be at least 1"),
    (["--gpus", "0,x"], "--gpus expects comma-separated integers"),
    (["--jobs", "2", "--method", "supermix"], "unknown method 'supermix'"),
    (["--jobs", "2", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
    (["--jobs", "2", "--set", "model.width=-3"], "cannot build digits-cnn"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(msda, db_path, isolated_results, args, message):
    r = msda("train", "--recipe", "digits-mixup", *TINY, *args)
    lines = r.stderr.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and message in lines[0], r.stderr
    if db_path.exists():
        assert query(db_path, "SELECT count(*) FROM run") == [(0,)]
    assert not (isolated_results / "runs").exists()


def test_unknown_subset_is_refused_before_any_child_starts(msda, db_path, isolated_results):
    from msda_cli.store import Store

    Store(db_path)
    r = msda("train", "--recipe", "digits-mixup", *TINY, "--jobs", "2", "--subset", "nosuchsubset")
    assert r.code == 2 and "nosuchsubset" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert query(db_path, "SELECT count(*) FROM run") == [(0,)] and not (isolated_results / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
@pytest.mark.parametrize("args,message", [
    (["--gpus", "0"], "--gpus needs GPUs, but no GPU is visible"),
    (["--gpus-per-run", "2"], "--gpus-per-run needs GPUs, but no GPU is visible"),
    (["--resume", "abc", "--jobs", "2"], "--jobs, --gpus and --gpus-per-run start new runs"),
])
def test_gpu_options_on_a_cpu_only_machine_are_refused(msda, db_path, args, message):
    recipe = [] if "--resume" in args else ["--recipe", "digits-mixup"]
    r = msda("train", *recipe, *args)
    lines = r.stderr.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and message in lines[0], r.stderr
    assert not db_path.exists() or query(db_path, "SELECT count(*) FROM run") == [(0,)]


@pytest.mark.parametrize("kwargs,message", [
    (dict(gpus=[7]), "--gpus: there is no GPU 7 (visible: 0, 1)"),
    (dict(gpus=[0, 0]), "--gpus names GPU 0 twice"),
    (dict(gpus=[]), "--gpus names no GPU"),
    (dict(gpus=[1], gpus_per_run=2), "--gpus-per-run 2 exceeds the 1 GPU(s) given"),
    (dict(gpus_per_run=3), "--gpus-per-run 3 exceeds the 2 GPU(s) given"),
    (dict(jobs=0), "--jobs must be at least 1"),
])
def test_bad_gpu_plans_are_refused(kwargs, message):
    with pytest.raises(parallel.MsdaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_slots(kwargs.pop("jobs", None), kwargs.pop("gpus", None), kwargs.pop("gpus_per_run", None),
                   n_visible=2, threads=8)


def test_gpu_plans(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert plan_slots(None, None, None, n_visible=4, threads=8) == [Slot((str(i),), 2) for i in range(4)]
    assert plan_slots(None, None, 2, n_visible=4, threads=8) == [Slot(("0", "1"), 4), Slot(("2", "3"), 4)]
    assert plan_slots(None, [3, 1], None, n_visible=4, threads=8) == [Slot(("3",), 4), Slot(("1",), 4)]
    # More jobs than GPUs: two runs share GPU 0.
    assert [s.gpus for s in plan_slots(3, [0, 1], None, n_visible=2, threads=8)] == [("0",), ("1",), ("0",)]
    # --gpus counts the GPUs this process sees; children get the same devices by their inherited names.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert plan_slots(None, [1], None, n_visible=2, threads=8) == [Slot(("6",), 8)]
    assert plan_slots(None, None, None, cpu=True, n_visible=2, threads=8) == [Slot((), 8)]


def test_cpu_plans_split_the_threads():
    assert plan_slots(None, None, None, n_visible=0, threads=2) == [Slot((), 2)]
    assert plan_slots(2, None, None, n_visible=0, threads=2) == [Slot((), 1)] * 2
    assert plan_slots(3, None, None, n_visible=0, threads=8) == [Slot((), 2)] * 3
    assert plan_slots(4, None, None, n_visible=0, threads=2) == [Slot((), 1)] * 4


def test_child_commands_and_environments(tmp_path):
    spec = parallel.RunSpec(("--resume", "abc"), "abc", "x", 3)
    db = tmp_path / "msda.db"
    assert child_command(spec, Slot((), 1), db) == [sys.executable, "-m", "msda_cli", "train", "--resume", "abc",
                                                    "--db", str(db), "--cpu"]
    single = child_command(spec, Slot(("2",), 4), db)
    assert single[1:] == ["-m", "msda_cli", "train", "--resume", "abc", "--db", str(db)]
    multi = child_command(spec, Slot(("0", "1"), 4), db, port=29611)
    assert multi[1:3] == ["-m", "accelerate.commands.launch"]
    assert multi[multi.index("--num_processes") + 1] == "2" and multi[multi.index("--main_process_port") + 1] == "29611"
    assert multi[-7:] == ["-m", "msda_cli", "train", "--resume", "abc", "--db", str(db)]
    env = child_env(Slot(("0", "1"), 3), {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    assert env == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1", "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    assert "CUDA_VISIBLE_DEVICES" not in child_env(Slot((), 1), {"PATH": "/bin"})


def test_torch_in_a_child_uses_the_threads_it_is_given():
    code = "import torch; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=child_env(Slot((), 1)), capture_output=True, text=True)
    assert out.stdout.strip() == "1"


def test_each_child_resolves_exactly_its_run(msda, tmp_path, monkeypatch):
    """The arguments of a spec, parsed by `msda train`, give back its request; resolved, that request
    gives the one config the parent resolved for it."""
    import msda_cli.engine.launch as launch

    seen = []
    monkeypatch.setattr(launch, "train", lambda req, *a, **k: seen.append(req) or [])
    full = TrainRequest(recipe="digits-mixup", methods=["vanilla", "cutmix"], archs=["digits-cnn"], seeds=[3, 5],
                        epochs=2, sets=TINY_SETS + ["mixer.smoothing=0.1"], grid=["optim.lr=0.1,0.05"],
                        data_dir=str(tmp_path), download=True, subset_id="s1", run_id="feed0001", name="sweep",
                        tags=["a", "b"])
    assert all(getattr(full, f.name) for f in fields(TrainRequest))  # every field is carried over
    assert msda("train", *request_args(full)).code == 0 and seen[-1] == full

    req = TrainRequest(recipe="digits-mixup", methods=["vanilla", "cutmix"], seeds=[3, 5], sets=TINY_SETS)
    configs = resolve_configs(req)
    specs = new_run_specs(req, configs)
    assert len({s.run_id for s in specs}) == 4 and specs[1].label == "vanilla · digits-cnn · seed 5"
    for spec, cfg in zip(specs, configs):
        assert msda("train", *spec.args).code == 0
        child = seen[-1]
        assert child.run_id == spec.run_id and child.archs == []  # no --arch: the recipe's own, as in the parent
        assert [c.model_dump_json() for c in resolve_configs(child)] == [cfg.model_dump_json()]


def test_jobs_1_trains_in_this_process(msda, db_path):
    assert msda("train", "--recipe", "digits-vanilla", "--epochs", "1", *TINY, "--jobs", "1").code == 0
    assert query(db_path, "SELECT pid, status FROM run") == [(os.getpid(), "finished")]


def test_run_id_names_exactly_one_new_run(msda, db_path):
    r = msda("train", "--recipe", "digits-vanilla", "--seeds", "0,1", *TINY, "--run-id", "feed0001")
    assert r.code == 2 and "--run-id names one run; the options expand into 2" in r.stderr
    assert msda("train", "--recipe", "digits-vanilla", "--epochs", "1", *TINY, "--run-id", "feed0001").code == 0
    r = msda("train", "--recipe", "digits-vanilla", "--epochs", "1", *TINY, "--run-id", "feed0001")
    assert r.code == 2 and "a run with this id exists" in r.stderr
    assert query(db_path, "SELECT id FROM run") == [("feed0001",)]


def test_the_live_view_shows_active_runs_by_what_they_are_and_the_counts():
    from msda_cli.engine.parallel_view import LiveView, RunProgress

    text = io.StringIO()
    view = LiveView(Console(file=text, force_terminal=True, width=160))
    runs = [RunProgress("mixup · digits-cnn · seed 0", "aaaa1111", "CPU, 1 thread", "running", 1, 3, 0.5, 80.0, 12.0),
            RunProgress("vanilla · digits-cnn · seed 0", "bbbb2222", "CPU, 1 thread", "running", 0, 3),
            RunProgress("cutmix · digits-cnn · seed 1", "cccc3333", epochs=3)]
    runs[0].step = "12/29"  # the launcher reads it from the run's progress file
    view.update(runs)
    runs[1].status, runs[1].error = "failed", "RuntimeError: boom"
    view.update(runs)
    view.close()
    out = text.getvalue()
    assert "mixup · digits-cnn · seed 0" in out and "1/3" in out and "0.5000" in out and "80.00" in out
    assert "0:00:12" in out and "aaaa1111" not in out  # runs are shown by what they are, not by id
    assert "12/29" in out  # the step within the epoch in progress
    assert "failed vanilla · digits-cnn · seed 0 (run bbbb2222), 0/3 epochs: RuntimeError: boom" in out
    assert "0 finished · 1 failed · 1 running · 1 queued" in out


def _wait_for(worker, timeout: float = 300.0) -> int:
    deadline = time.monotonic() + timeout
    while (status := worker.status()) is None:
        assert time.monotonic() < deadline, "the worker's run did not end"
        time.sleep(0.1)
    return status


def test_runs_in_one_worker_equal_each_run_in_a_fresh_process(tmp_path):
    """A worker's second run starts from a fresh process's state: after a bf16 run on two threads (Accelerate's
    singletons keep their mixed precision; fault points count per process), a fp32 run gives the weights and
    metrics it gives alone, and so does the first."""
    from msda_cli.engine.worker import Worker

    first = ["--recipe", "digits-vanilla", "--seeds", "3", "--epochs", "1", *TINY, "--set", "precision=bf16",
             "--set", "threads=2"]
    second = ["--recipe", "digits-mixup", "--seeds", "0", "--epochs", "2", *TINY]
    fault = {"MSDA_FAULT": "checkpoint.renamed:error@3"}  # the second run alone reaches the point twice
    fresh, shared = tmp_path / "fresh", tmp_path / "shared"
    fresh.mkdir()
    for args in (first, second):
        r = subprocess.run(python_cmd("train", *args, "--cpu"), env=_env(fresh, **fault), capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    (shared / "runs").mkdir(parents=True)
    logs = [shared / "runs" / "first.log", shared / "runs" / "second.log"]
    worker = Worker(child_env(Slot((), 1), _env(shared, **fault)), logs[0])
    try:
        for args, log in zip((first, second), logs):
            worker.hand(["train", *args, "--db", str(shared / "msda.db"), "--cpu"], log)
            assert _wait_for(worker) == 0, log.read_text()[-3000:]
        pids = {pid for (pid,) in query(shared / "msda.db", "SELECT pid FROM run")}
        assert pids == {worker.proc.pid} and worker.alive  # both trained in the one worker, which waits for more
    finally:
        worker.close()
        worker.proc.wait(60)
        worker.release()
    assert worker.proc.returncode == 0 and "precision" not in logs[1].read_text()
    a, b = _by_setting(fresh / "msda.db"), _by_setting(shared / "msda.db")
    assert sorted(a) == sorted(b) == [("mixup", 0), ("vanilla", 3)]
    for key in a:
        assert a[key][1:] == b[key][1:] and len(a[key][2]) >= 2, key
        for name, tensor in a[key][0].items():
            assert torch.equal(tensor, b[key][0][name]), (key, name)


def test_a_worker_ends_after_a_run_that_fails_and_its_slot_gets_a_fresh_one(db_path, isolated_results):
    """Bad input in one run (exit 2) fails that run only; the next run on the slot trains in a new worker."""
    bad = parallel.RunSpec(("--recipe", "digits-vanilla", "--set", "optim.lr=-1"), "bad0bad0", "bad", 1)
    good_req = TrainRequest(recipe="digits-vanilla", epochs=1, sets=TINY_SETS)
    specs = [bad, *new_run_specs(good_req, resolve_configs(good_req))]
    outcomes = run_parallel(specs, db_path, jobs=1)
    assert [o.status for o in outcomes] == ["failed", "finished"] and [o.returncode for o in outcomes] == [2, 0]
    assert "optim.lr" in outcomes[0].progress.error
    bad_log = (isolated_results / "runs" / "bad0bad0" / "console.log").read_text()
    good_log = (isolated_results / "runs" / specs[1].run_id / "console.log").read_text()
    assert "optim.lr" in bad_log and "(worker started now)" in good_log  # not the one that ran the bad run


def test_the_end_summary_takes_every_format(msda, db_path):
    """`--format json`: stdout is the summary alone (one record per run), the progress lines go to stderr."""
    r = msda("train", "--recipe", "digits-vanilla", "--seeds", "0,1", "--epochs", "1", *TINY, "--jobs", "2",
             "--format", "json")
    assert r.code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert sorted(row["id"] for row in rows) == sorted(i for (i,) in query(db_path, "SELECT id FROM run"))
    assert [(row["status"], row["epochs"]) for row in rows] == [("finished", "1/1")] * 2 and "epoch 1/1" in r.stderr
    r = msda("train", "--recipe", "digits-vanilla", "--seeds", "2", "--epochs", "1", *TINY, "--format", "markdown")
    assert r.code == 0 and r.stdout.startswith("**Finished runs**") and "| finished |" in r.stdout, r.stdout
