"""`--launcher slurm` against a real one-node Slurm cluster (tests/slurm.py): job arrays through submitit,
requeue and resume under the same run id, `runs list` / `runs cancel`, and bad input."""

from __future__ import annotations

import subprocess
import time

import pytest
import torch

from conftest import query

SWEEP = ("--recipe", "digits-mixup", "--arch", "mlp")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a CPU run's weights depend on its thread count


def _weights(db, run_id):
    (path,) = query(db, "SELECT checkpoint FROM run WHERE id=?", run_id)[0]
    return torch.load(path, weights_only=True)["model"]


def _same_weights(db, a, b) -> bool:
    wa, wb = _weights(db, a), _weights(db, b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _squeue(job: str) -> str:
    done = subprocess.run(["squeue", "-h", "-j", job.split("_")[0], "-r", "-o", "%i %T"], capture_output=True,
                          text=True)
    return dict(line.split() for line in done.stdout.splitlines()).get(job, "")


def _wait(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _slurm_output(results, run_id) -> str:
    return "".join((results / "runs" / run_id / name).read_text() for name in ("slurm.out", "slurm.err"))


def _epochs_done(db, run_id) -> int:
    return query(db, "SELECT epochs_done FROM run WHERE id=?", run_id)[0][0]


def _submit_one(msda, db, epochs: int) -> tuple[str, str]:
    result = msda("train", *SWEEP, "--method", "mixup", "--seeds", "0", "--epochs", epochs, "--launcher", "slurm")
    assert result.code == 0, result.stderr
    ((run_id, job),) = query(db, "SELECT id, slurm_job FROM run")
    assert f"run {run_id}" in result.stdout and f"Slurm job {job}" in result.stdout
    return run_id, job


def test_a_sweep_lands_as_finished_runs_with_the_weights_of_local_runs(slurm_cluster, msda, db_path, isolated_results):
    args = (*SWEEP, "--method", "vanilla,mixup", "--seeds", "0,1", "--epochs", "2")
    result = msda("train", *args, "--launcher", "slurm", "--wait")
    assert result.code == 0, result.stderr
    rows = query(db_path, "SELECT id, method, seed, status, slurm_job FROM run")
    assert len(rows) == 4 and {r[3] for r in rows} == {"finished"}
    (array,) = {job.split("_")[0] for *_, job in rows}
    assert sorted(job for *_, job in rows) == [f"{array}_{i}" for i in range(4)]
    assert "4 finished" in result.stdout  # the local launcher's summary, after its live lines on stderr
    assert "epoch 2/2" in result.stderr
    for run_id, *_ in rows:  # Slurm's output of each task is in its run folder
        assert "Job completed successfully" in _slurm_output(isolated_results, run_id)
    listed = msda("runs", "list")
    assert listed.code == 0 and "┃ slurm" in listed.stdout and f"{rows[0][4]} completed" in listed.stdout

    assert msda("train", *args).code == 0  # the same runs, trained here
    for run_id, method, seed, *_ in rows:
        (local,) = query(db_path, "SELECT id FROM run WHERE method=? AND seed=? AND slurm_job IS NULL", method, seed)
        assert _same_weights(db_path, run_id, local[0]), (method, seed)


@pytest.mark.parametrize("how", ["usr2", "scontrol"])
def test_a_signalled_task_is_requeued_and_resumes_to_the_weights_of_a_straight_run(slurm_cluster, msda, db_path,
                                                                                    isolated_results, how):
    epochs = 20
    run_id, job = _submit_one(msda, db_path, epochs)
    _wait(lambda: _epochs_done(db_path, run_id) >= 2, "two epochs")
    if how == "usr2":  # what Slurm sends before a time limit or on preemption (as submitit's own requeue test does)
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
    else:  # an administrator's (or a preempting scheduler's) requeue: Slurm stops the task and queues it again
        subprocess.run(["scontrol", "requeue", job], check=True)
    _wait(lambda: _squeue(job) == "PENDING", "the requeued job")
    stopped_at = _epochs_done(db_path, run_id)
    assert 2 <= stopped_at < epochs
    assert query(db_path, "SELECT status FROM run WHERE id=?", run_id) == [("interrupted",)]
    _wait(lambda: query(db_path, "SELECT status FROM run WHERE id=?", run_id) == [("finished",)], "the finish", 180)
    assert query(db_path, "SELECT slurm_job, epochs_done FROM run WHERE id=?", run_id) == [(job, epochs)]
    log = _slurm_output(isolated_results, run_id)
    if how == "usr2":
        assert "Caught signal SIGUSR2" in log and "Calling checkpoint method" in log and "Requeued job" in log
    epochs_stored = query(db_path, "SELECT epoch, COUNT(*) FROM metric WHERE run_id=? AND name='train_loss' "
                                   "GROUP BY epoch", run_id)
    assert [e for e, n in epochs_stored] == list(range(epochs)) and {n for _, n in epochs_stored} == {1}

    assert msda("train", *SWEEP, "--method", "mixup", "--seeds", "0", "--epochs", epochs).code == 0
    (straight,) = query(db_path, "SELECT id FROM run WHERE slurm_job IS NULL")
    assert _same_weights(db_path, run_id, straight[0])


def test_runs_cancel_leaves_the_run_interrupted_and_resume_finishes_it(slurm_cluster, msda, db_path):
    run_id, job = _submit_one(msda, db_path, 20)
    _wait(lambda: _epochs_done(db_path, run_id) >= 1, "an epoch")
    result = msda("runs", "cancel", run_id[:5])
    assert result.code == 0, result.stderr
    assert f"cancelled Slurm job {job} of run {run_id}" in result.stdout
    assert query(db_path, "SELECT status FROM run WHERE id=?", run_id) == [("interrupted",)]
    assert _squeue(job) in ("", "CANCELLED")
    assert "cancelled" in msda("runs", "list").stdout
    assert msda("train", "--resume", run_id).code == 0
    assert query(db_path, "SELECT status, epochs_done FROM run WHERE id=?", run_id) == [("finished", 20)]


@pytest.mark.parametrize("options, message", [
    (("--slurm-opt", "colour=red"), "--slurm-opt colour: not a submitit SlurmExecutor parameter"),
    (("--slurm-opt", "constraint"), "give key=value"),
    (("--slurm-opt", "nodes=2"), "--slurm-opt nodes: give --nodes instead"),
    (("--time", "1:2:3:4"), "--time '1:2:3:4'"),
    (("--time", "0"), "no time at all"),
    (("--mem", "lots"), "--mem 'lots'"),
    (("--partition", "nosuchpartition"), "sbatch refused the job array: invalid partition"),
])
def test_bad_slurm_input_is_one_line_exit_2_and_writes_nothing(slurm_cluster, msda, db_path, isolated_results,
                                                              options, message):
    result = msda("train", *SWEEP, "--method", "vanilla,mixup", "--epochs", "1", "--launcher", "slurm", *options)
    assert result.code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not db_path.exists() or query(db_path, "SELECT COUNT(*) FROM run") == [(0,)]
    assert not (isolated_results / "runs").exists() or not any((isolated_results / "runs").iterdir())
    assert not (isolated_results / "slurm").exists() or not any((isolated_results / "slurm").iterdir())


@pytest.mark.parametrize("args, message", [
    (("--launcher", "slurm"), "no sbatch on PATH"),
    (("--partition", "gpu"), "--partition: Slurm options, given without --launcher slurm"),
    (("--launcher", "cloud"), "--launcher"),
    (("--launcher", "slurm", "--jobs", "2"), "Slurm places them itself"),
])
def test_slurm_options_without_slurm_are_refused(msda, db_path, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no squeue
    result = msda("train", *SWEEP, "--epochs", "1", *args)
    assert result.code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not db_path.exists() or query(db_path, "SELECT COUNT(*) FROM run") == [(0,)]


def test_runs_list_asks_slurm_only_about_runs_it_trains(msda, db_path, tmp_path, monkeypatch):
    import msda_cli.engine.slurm as slurm
    from msda_cli.store import Store

    asked = []
    monkeypatch.setattr(slurm, "job_states", lambda jobs: asked.append(list(jobs)) or None)
    store = Store(db_path)
    local, queued = store.create_run(recipe="r").id, store.create_run(recipe="r").id
    result = msda("runs", "list")
    assert result.code == 0 and asked == [] and "┃ slurm" not in result.stdout
    store.update_run(queued, slurm_job="77_3")
    result = msda("runs", "list")
    assert result.code == 0 and asked == [["77_3"]] and "77_3" in result.stdout  # squeue unreachable: the id alone
    assert local and msda("runs", "cancel", local).code == 2


def test_reproduce_submits_what_the_table_lacks_and_a_second_call_does_nothing(slurm_cluster, msda, db_path):
    args = ("reproduce", "--table", "digits", "--seeds", "0", "--rows", "mixup", "--arch", "mlp", "--epochs", "1",
            "--launcher", "slurm", "--wait")
    result = msda(*args)
    assert result.code == 0, result.stderr
    ((run_id, status, job),) = query(db_path, "SELECT id, status, slurm_job FROM run")
    assert status == "finished" and f"run {run_id}" in result.stdout and f"Slurm job {job}" in result.stdout
    again = msda(*args)
    assert again.code == 0 and "Slurm job" not in again.stdout
    assert query(db_path, "SELECT COUNT(*) FROM run") == [(1,)]


def test_slurm_time_formats_in_minutes():
    from msda_cli.engine.slurm import time_minutes

    cases = {"90": 90, "1:30": 2, "2:00:00": 120, "0:00:59": 1, "1-0": 1440, "1-2:30": 1590, "2-00:00:30": 2881}
    assert {text: time_minutes(text) for text in cases} == cases


def test_a_task_runs_the_local_launchers_command_and_across_nodes_one_accelerate_launch_per_node():
    from msda_cli.engine.parallel import RunSpec, Slot, child_command
    from msda_cli.engine.slurm import task_command

    spec = RunSpec(("--resume", "0123abcd"), "0123abcd", "mixup · mlp · seed 0", 2)
    for slot in (Slot((), 4), Slot(("0",), 4), Slot(("0", "1"), 4)):  # one node: what --jobs would run
        assert task_command(spec, slot, "/r/msda.db", 21234, 1, 0, "n1") == child_command(spec, slot, "/r/msda.db",
                                                                                           21234)
    command = task_command(spec, Slot(("0", "1"), 4), "/r/msda.db", 21234, 3, 2, "n1")
    flags = dict(zip(command[3::2], command[4::2]))
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert {k: flags[k] for k in ("--num_processes", "--num_machines", "--machine_rank", "--main_process_ip",
                                  "--main_process_port")} == {"--num_processes": "6", "--num_machines": "3",
                                                             "--machine_rank": "2", "--main_process_ip": "n1",
                                                             "--main_process_port": "21234"}
    assert command[-6:] == ["msda_cli", "train", "--resume", "0123abcd", "--db", "/r/msda.db"]
