"""`msda subsample` with several subsets is all or nothing, whatever moment it is killed at.

A real `msda subsample` subprocess is killed (SIGKILL) or hits a full disk at a named point
(`MSDA_FAULT`, see msda_cli.faults): between two subsets' files, after the last file, after the
commit. The store then holds none or all of the call's subsets, every row names a complete
file, and after the next call no indices file is left that no row names.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import python_cmd, query, train_shared_runs

REQUEST = ["--ratio", "0.1,0.2", "--measure", "cv,random", "--mixes", "2"]  # four subsets
N_SUBSETS = 4


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    results = tmp_path_factory.mktemp("subsample_source")
    db = train_shared_runs(results, ["--recipe", "digits-vanilla", "--epochs", "1",
                                     "--set", "data.options.image_size=16"])
    return results, query(db, "SELECT id FROM run")[0][0]


@pytest.fixture
def results(source, tmp_path):
    folder, run_id = source
    shutil.copytree(folder, tmp_path / "copy")
    return tmp_path / "copy", run_id


def subsample(results, run_id, fault=None):
    env = {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(results / "msda.db"), "OMP_NUM_THREADS": "1"}
    env.pop("MSDA_FAULT", None)
    if fault:
        env["MSDA_FAULT"] = fault
    return subprocess.run(python_cmd("subsample", run_id, *REQUEST), env=env, capture_output=True, text=True,
                          timeout=300)


def stored(results) -> dict[str, str]:
    return dict(query(results / "msda.db", "SELECT id, indices_path FROM subset"))


def assert_every_row_names_a_whole_file(rows: dict[str, str]) -> None:
    for path in rows.values():
        assert np.load(path).dtype == np.int64


def assert_no_orphans(results, rows: dict[str, str]) -> None:
    folder = results / "subsets"
    assert sorted(p.name for p in folder.glob("*.npy")) == sorted(f"{i}.npy" for i in rows)
    assert not list(folder.glob(".pending-*"))


@pytest.mark.parametrize("point,committed", [
    ("subsets.file_written@1", False),  # between the first subset and the second
    ("subsets.file_written@3", False),  # between the third and the fourth
    ("subsets.before_commit", False),  # every file written, no row
    ("subsets.committed", True),  # every row committed, the journal not yet removed
])
def test_a_kill_leaves_all_subsets_or_none_and_the_next_call_cleans_up(results, point, committed):
    folder, run_id = results
    killed = subsample(folder, run_id, fault=point)
    assert killed.returncode == -9, killed.stderr[-2000:]
    rows = stored(folder)
    assert len(rows) == (N_SUBSETS if committed else 0)
    assert_every_row_names_a_whole_file(rows)
    again = subsample(folder, run_id)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = stored(folder)
    assert len(rows) == (2 if committed else 1) * N_SUBSETS
    assert_every_row_names_a_whole_file(rows)
    assert_no_orphans(folder, rows)


def test_a_full_disk_between_subsets_is_one_line_and_writes_nothing(results):
    folder, run_id = results
    r = subsample(folder, run_id, fault="subsets.file_written:enospc@2")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert lines[0].startswith("msda: error: the disk is full (No space left on device")
    assert stored(folder) == {}
    assert_no_orphans(folder, {})
