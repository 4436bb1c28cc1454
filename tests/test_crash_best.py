"""checkpoint_keep: both, killed while best.pt is written or right after: resume ends with the best.pt and the
checkpoint.pt of an uninterrupted run, and no temporary file."""

from __future__ import annotations

import pytest
import torch

from conftest import query
from test_crash_train import run_msda

ARGS = ["train", "--recipe", "digits-vanilla", "--epochs", "3", "--set", "data.options.image_size=16",
        "--set", "batch_size=128", "--set", "checkpoint_keep=both"]


def kept(results) -> dict:
    ((run_id, status),) = query(results / "msda.db", "SELECT id, status FROM run")
    folder = results / "runs" / run_id
    files = {name: torch.load(folder / name, weights_only=True) for name in ("best.pt", "checkpoint.pt")}
    return {"id": run_id, "status": status, "leftovers": sorted(p.name for p in folder.glob("*.tmp")),
            "best_epoch": files["best.pt"]["epoch"], "best": files["best.pt"]["model"],
            "last": files["checkpoint.pt"]["model"]}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    results = tmp_path_factory.mktemp("straight")
    assert run_msda(results, *ARGS).returncode == 0
    return kept(results)


# Epoch 1 saves best.pt first, then checkpoint.pt: @1 is best.pt's write, its rename, checkpoint.pt's write.
@pytest.mark.parametrize("point", ["checkpoint.tmp_written@1", "checkpoint.renamed@1", "checkpoint.tmp_written@2"])
def test_kill_around_best_then_resume(tmp_path, straight, point):
    killed = run_msda(tmp_path, *ARGS, fault=point)
    assert killed.returncode == -9, killed.stderr
    ((run_id,),) = query(tmp_path / "msda.db", "SELECT id FROM run")
    resumed = run_msda(tmp_path, "train", "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    got = kept(tmp_path)
    assert got["status"] == "finished" and got["leftovers"] == []
    assert got["best_epoch"] == straight["best_epoch"]
    for which in ("best", "last"):
        assert all(torch.equal(got[which][k], straight[which][k]) for k in straight[which]), which
