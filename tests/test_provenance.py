"""Provenance: each start of a run stores the msda code, command line, libraries and device; runs show prints it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch

from conftest import interrupt_in_epoch, query

ARGS = ["train", "--recipe", "digits-mixup", "--method", "vanilla", "--epochs", "2",
        "--set", "data.options.image_size=16", "--set", "batch_size=64"]


def _git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


def _repo(path):
    """A git repository at `path` with one committed file."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    (path / "f.txt").write_text("a\n")
    _git(path, "add", "f.txt")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    return path


def test_collect_names_versions_device_and_command():
    import accelerate
    import torchvision

    from msda_cli import __version__
    from msda_cli.provenance import collect

    p = collect("cpu", argv=["msda", "train", "--recipe", "x"])
    assert p["kind"] == "start" and p["msda_version"] == __version__
    assert p["command"] == ["msda", "train", "--recipe", "x"]
    assert (p["torch"], p["torchvision"], p["accelerate"]) == (torch.__version__, torchvision.__version__,
                                                                accelerate.__version__)
    assert p["cuda"] == torch.version.cuda and p["device"] == "cpu" and p["processes"] == 1
    with pytest.raises(ValueError):
        collect("cpu", kind="restart")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_of_a_checkout_clean_and_dirty(tmp_path, monkeypatch):
    from msda_cli import provenance

    repo = _repo(tmp_path / "checkout")
    monkeypatch.setattr(provenance, "PACKAGE_ROOT", repo.resolve())
    assert provenance.git_state() == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "untracked.txt").write_text("new\n")  # untracked files do not make a checkout dirty
    assert provenance.git_state()["dirty"] is False
    (repo / "f.txt").write_text("b\n")
    assert provenance.git_state()["dirty"] is True


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_outside_a_checkout_says_why(tmp_path, monkeypatch):
    from msda_cli import provenance

    monkeypatch.setattr(provenance, "PACKAGE_ROOT", tmp_path)  # no repository at all
    state = provenance.git_state()
    assert state["commit"] is None and "not a git checkout" in state["why"]
    inner = _repo(tmp_path / "other") / "site-packages"  # installed inside someone else's repository
    inner.mkdir()
    monkeypatch.setattr(provenance, "PACKAGE_ROOT", inner.resolve())
    state = provenance.git_state()
    assert state["commit"] is None and "not run from a git checkout" in state["why"]


def test_git_state_without_git_on_path(monkeypatch):
    from msda_cli import provenance

    monkeypatch.setenv("PATH", "")
    assert provenance.git_state() == {"commit": None, "why": "git is not on PATH"}
    assert provenance.collect("cpu")["git"]["commit"] is None  # and collecting does not fail


def test_train_stores_the_start_and_a_resume_appends_one(msda, db_path, monkeypatch):
    from msda_cli import provenance

    calls = []
    real = provenance.git_state
    monkeypatch.setattr(provenance, "git_state", lambda: calls.append(1) or real())
    monkeypatch.setattr("sys.argv", ["/venv/bin/msda", *ARGS])  # as the console script sees it
    interrupt_in_epoch(monkeypatch, msda, ARGS)
    assert len(calls) == 1  # once per run start, not per epoch
    ((run_id, text),) = query(db_path, "SELECT id, provenance FROM run")
    (first,) = json.loads(text)
    assert first["kind"] == "start" and first["command"][1:] == ARGS and first["device"] == "cpu"
    assert first["git"] == real()

    monkeypatch.setattr(provenance.socket, "gethostname", lambda: "other-machine")
    monkeypatch.setattr("sys.argv", ["/venv/bin/msda", "train", "--resume", run_id])
    assert msda("train", "--resume", run_id).code == 0
    assert len(calls) == 2
    starts = json.loads(query(db_path, "SELECT provenance FROM run")[0][0])
    assert starts[0] == first  # the first provenance is kept
    assert [s["kind"] for s in starts] == ["start", "resume"] and starts[1]["host"] == "other-machine"
    assert starts[1]["command"][-2:] == ["--resume", run_id]

    shown = json.loads(msda("runs", "show", run_id, "--format", "json").stdout)
    assert shown["provenance"] == starts
    text = msda("runs", "show", run_id).stdout
    assert text.count("provenance") == 2 and f"torch {torch.__version__}" in text and "on other-machine" in text
    assert f"--resume {run_id}" in text and " ".join(ARGS) in text


def test_runs_show_of_a_run_without_provenance(msda, db_path):
    from msda_cli.store import Store

    run = Store(db_path).create_run(dataset="digits", arch="mlp", method="vanilla", config="{}")
    assert "provenance  not recorded" in msda("runs", "show", run.id).stdout
    assert json.loads(msda("runs", "show", run.id, "--format", "json").stdout)["provenance"] == []


def test_the_first_start_of_a_queued_row_is_a_start_not_a_resume(msda, db_path):
    """`--launcher slurm` stores rows before any task runs; the task's `msda train --resume` is their first start."""
    from msda_cli.engine.launch import TrainRequest, resolve_configs
    from msda_cli.engine.slurm import _create_row
    from msda_cli.store import Store

    req = TrainRequest(recipe="digits-mixup", methods=["vanilla"], epochs=1, sets=ARGS[ARGS.index("--set"):][1::2])
    (cfg,) = resolve_configs(req)
    _create_row(Store(db_path), "0123abcd", req, cfg)
    assert query(db_path, "SELECT provenance FROM run") == [(None,)]
    assert msda("train", "--resume", "0123abcd").code == 0
    assert [s["kind"] for s in json.loads(query(db_path, "SELECT provenance FROM run")[0][0])] == ["start"]
