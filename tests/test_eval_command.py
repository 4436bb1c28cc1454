"""`msda eval` of the checkpoint training measured last, on the same split, is that setting again, not a second one."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import query
from msda_cli.metric_names import EVAL, TOP1

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "2"]
WARNING = "under several settings"


def _report(msda, *args):
    r = msda("report", "--rows", "method", "--cols", "arch", "--metric", TOP1, "--format", "json", *args)
    assert r.code == 0, r.stderr
    return r.stdout


def _cell_mean(text: str) -> float:
    """The one cell's mean in `msda report --format json`."""
    (cell,) = json.loads(text)["cells"]
    return cell["mean"]


def test_eval_of_the_final_checkpoint_on_its_split_keeps_one_setting(msda, db_path):
    assert msda("train", "--recipe", "digits-mixup", *FAST).code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    before = _report(msda)
    assert WARNING not in before
    assert msda("eval", run_id).code == 0
    assert msda("eval", run_id).code == 0  # again: still one setting
    after = _report(msda)
    assert WARNING not in after
    assert _cell_mean(after) == pytest.approx(_cell_mean(before), abs=1e-3)
    params = [json.loads(p) for (p,) in query(db_path, "SELECT params FROM metric WHERE kind=? AND name=? "
                                                        "ORDER BY id", EVAL, TOP1)]
    assert params[0] == {} and all(p["epoch"] == 1 and "checkpoint" not in p for p in params[1:])


def test_eval_of_an_unfinished_runs_checkpoint_is_a_setting_of_its_own(msda, db_path):
    """Its final rows, once resumed and finished, will measure another model: the eval names its file."""
    assert msda("train", "--recipe", "digits-mixup", *FAST).code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    con = sqlite3.connect(db_path)
    con.execute("UPDATE run SET status = 'interrupted', finished_at = NULL WHERE id = ?", (run_id,))
    con.commit()
    con.close()
    assert msda("eval", run_id).code == 0
    (params,) = [json.loads(p) for (p,) in query(db_path, "SELECT params FROM metric WHERE kind=? AND name=? AND "
                                                          "params LIKE '%checkpoint%'", EVAL, TOP1)]
    assert params["checkpoint"] == "checkpoint.pt" and params["epoch"] == 1
    assert WARNING in _report(msda, "--include-unfinished")
