"""The same code as two processes (torchrun, gloo on the CPU): one run row, the same test accuracy."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import query
from msda_cli.metric_names import EVAL, TOP1, TRAIN_LOSS

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.skipif(not TORCHRUN.exists() and shutil.which("torchrun") is None, reason="torchrun not installed")
def test_two_process_run_stores_one_row_and_matches_single_process_eval(tmp_path, msda, isolated_results):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN if TORCHRUN.exists() else "torchrun"), "--standalone", "--nproc_per_node", "2",
           "-m", "msda_cli", "train", "--recipe", "digits-mixup", "--epochs", "2",
           "--set", "data.options.image_size=16", "--set", "batch_size=64"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = isolated_results / "msda.db"
    rows = query(db, "SELECT id, status, epochs_done FROM run")
    assert len(rows) == 1 and rows[0][1:] == ("finished", 2)
    run_id = rows[0][0]
    # Per-epoch metrics written once (only the main process writes).
    assert query(db, "SELECT count(*) FROM metric WHERE name=?", TRAIN_LOSS) == [(2,)]
    trained_top1 = query(db, "SELECT value FROM metric WHERE kind=? AND name=?", EVAL, TOP1)[0][0]
    assert msda("eval", run_id).code == 0
    evals = [v for (v,) in query(db, "SELECT value FROM metric WHERE kind=? AND name=? ORDER BY id", EVAL, TOP1)]
    assert len(evals) == 2 and evals[1] == pytest.approx(trained_top1, abs=1e-9)
