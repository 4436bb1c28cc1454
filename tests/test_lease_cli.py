"""Leases seen from the command line: concurrent resumes, a run deleted while it trains, kills inside
store transactions, crafted run ids, and a diverging loss."""

import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import python_cmd, query, wait_for_first_epoch
from msda_cli.metric_names import TRAIN, TRAIN_LOSS
from msda_cli.store import Store

SMALL = ["--set", "data.options.image_size=16", "--set", "batch_size=64"]


def _env(results, **extra):
    return {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(results / "msda.db"), "OMP_NUM_THREADS": "1",
            **extra}


def _interrupted_run(db, epochs: int) -> str:
    from msda_cli.engine.launch import TrainRequest, resolve_configs

    (cfg,) = resolve_configs(TrainRequest(recipe="digits-vanilla", epochs=epochs, sets=SMALL[1::2]))
    store = Store(db)
    run = store.create_run(name="digits-vanilla/vanilla/digits-cnn/s0", recipe="digits-vanilla", dataset="digits",
                           arch="digits-cnn", method="vanilla", config=cfg.model_dump_json())
    store.update_run(run.id, status="interrupted")
    store.engine.dispose()
    return run.id


def test_of_two_concurrent_resumes_exactly_one_trains(isolated_results, db_path):
    run_id = _interrupted_run(db_path, epochs=3)
    procs = [subprocess.Popen(python_cmd("train", "--resume", run_id), env=_env(isolated_results),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert len(loser.strip().splitlines()) == 1 and run_id in loser, loser
    assert query(db_path, "SELECT status, epochs_done FROM run") == [("finished", 3)]
    assert query(db_path, "SELECT epoch, count(*) FROM metric WHERE name=? GROUP BY epoch", TRAIN_LOSS) == \
        [(0, 1), (1, 1), (2, 1)]
    assert not list((isolated_results / "runs" / run_id).glob("*.tmp"))


def test_a_run_deleted_while_it_trains_stops_and_leaves_no_folder(isolated_results, db_path, msda):
    trainer = subprocess.Popen(python_cmd("train", "--recipe", "digits-vanilla", "--epochs", "60", *SMALL),
                               env=_env(isolated_results), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run_id = wait_for_first_epoch(trainer, db_path)
    r = msda("runs", "rm", "--force", "--yes", run_id)
    assert r.code == 0, r.stderr
    code, stderr = trainer.wait(timeout=120), trainer.stderr.read()
    last = stderr.strip().splitlines()[-1]
    assert code == 1 and "was deleted" in last and last.startswith("msda: run"), stderr
    assert "Traceback" not in stderr and "sqlalche.me" not in stderr
    assert not (isolated_results / "runs" / run_id).exists()
    assert query(db_path, "SELECT count(*) FROM run") == [(0,)]
    assert query(db_path, "SELECT count(*) FROM metric") == [(0,)]


_RECORDER = """
import sys
from msda_cli.store import Store
store = Store(sys.argv[1])
lease = store.start_run(dataset="digits", config="{}")
print(lease.run_id, flush=True)
for epoch in range(3):
    store.record_epoch(lease.run_id, epoch, "train", [("train_loss", 1.0 / (epoch + 1)), ("lr", 0.1)],
                       epochs_done=epoch + 1, checkpoint=f"epoch-{epoch}")
"""


def test_a_kill_inside_an_epoch_transaction_leaves_the_previous_epoch_whole(isolated_results, db_path):
    proc = subprocess.run([sys.executable, "-c", _RECORDER, str(db_path)], capture_output=True, text=True,
                          env=_env(isolated_results, MSDA_FAULT="store.epoch_before_commit:kill@2"), timeout=120)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.strip()
    assert query(db_path, "SELECT epochs_done, checkpoint FROM run") == [(1, "epoch-0")]
    assert query(db_path, "SELECT epoch, name FROM metric ORDER BY id") == [(0, "train_loss"), (0, "lr")]
    store = Store(db_path)
    assert store.get_run(run_id).status == "interrupted"
    lease = store.take_over(run_id)
    for epoch in (1, 2):
        store.record_epoch(run_id, epoch, TRAIN, [(TRAIN_LOSS, 0.5)], epochs_done=epoch + 1)
    lease.release()
    assert query(db_path, "SELECT epoch, count(*) FROM metric WHERE name=? GROUP BY epoch", TRAIN_LOSS) == \
        [(0, 1), (1, 1), (2, 1)]


def test_a_kill_right_after_a_take_over_leaves_a_resumable_run(isolated_results, db_path):
    run_id = _interrupted_run(db_path, epochs=1)
    code = f"from msda_cli.store import Store; Store({str(db_path)!r}).take_over({run_id!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(isolated_results, MSDA_FAULT="store.take_over_committed:kill"))
    assert proc.returncode == -9, proc.stderr
    assert query(db_path, "SELECT status FROM run") == [("running",)]  # its owner is dead, though
    store = Store(db_path)
    assert store.get_run(run_id).status == "interrupted"
    assert store.take_over(run_id).run_id == run_id


@pytest.mark.parametrize("stored, typed", [("../victim", "../victim"), ("0/../../../victim", "0")])
def test_a_crafted_run_id_deletes_nothing_outside_the_results(isolated_results, db_path, msda, stored, typed):
    victim = isolated_results.parent / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    store = Store(db_path)
    run = store.create_run(dataset="digits", config="{}")
    store.update_run(run.id, status="finished")
    con = sqlite3.connect(db_path)
    with con:
        con.execute("UPDATE run SET id=? WHERE id=?", (stored, run.id))
    con.close()
    for args in (["runs", "rm", "--yes", typed], ["runs", "rm", "--force", "--yes", typed]):
        r = msda(*args)
        assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (victim / "precious.txt").read_text() == "keep me"
    assert query(db_path, "SELECT id FROM run") == [(stored,)]


def test_a_diverging_loss_is_stored_and_fails_the_run(msda, db_path):
    r = msda("train", "--recipe", "digits-vanilla", "--epochs", "3", "--set", "optim.lr=1000", *SMALL)
    last = r.stderr.strip().splitlines()[-1]  # after the epoch's progress line
    assert r.code == 1 and last.startswith("msda: run") and "diverged" in last and "Traceback" not in r.stderr
    ((status, error, done),) = query(db_path, "SELECT status, error, epochs_done FROM run")
    assert status == "failed" and "diverged" in error and done == 1
    assert query(db_path, "SELECT value FROM metric WHERE name=?", TRAIN_LOSS) == [("NaN",)]
    store = Store(db_path)
    (loss,) = [m.value for m in store.metrics(query(db_path, "SELECT id FROM run")[0][0]) if m.name == TRAIN_LOSS]
    assert loss != loss  # read back as a float NaN
