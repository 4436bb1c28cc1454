"""Bad input of any kind: one line on stderr, exit status 2, no traceback, nothing written.

Numbers are finite and strictly typed everywhere (a recipe, `--set`, command options); click's
usage errors are one line that points at `--help`; a checkpoint that cannot be resumed leaves the
run row as it was.
"""

import math
import shutil
import sqlite3

import pytest
import torch

from conftest import query, train_shared_runs

FAST = ["--recipe", "digits-mixup", "--epochs", "1", "--set", "data.options.image_size=16"]


def _one_line(r, *fragments):
    lines = r.stderr.strip().splitlines()
    assert r.code == 2 and len(lines) == 1, (r.code, r.stderr)
    assert lines[0].startswith("msda: error: ") and "Traceback" not in r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _nothing_written(db_path, results):
    if db_path.exists():
        assert query(db_path, "SELECT count(*) FROM run") == [(0,)]
        assert query(db_path, "SELECT count(*) FROM metric") == [(0,)]
    assert not (results / "runs").exists() or not any((results / "runs").iterdir())


@pytest.mark.parametrize("assignment,fragment", [
    ("mixer.alpha=.inf", "mixer.alpha: Input should be a finite number (got inf)"),  # hung in the gamma sampler
    ("mixer.alpha=.nan", "mixer.alpha: Input should be a finite number (got nan)"),
    ("mixer.alpha=inf", "finite number, got inf"),  # text that YAML leaves alone, refused by the mixer
    ("optim.lr=.inf", "optim.lr: Input should be a finite number"),
    ("optim.lr=.nan", "optim.lr: Input should be a finite number"),
    ("optim.lr=-.inf", "optim.lr: Input should be a finite number"),
    ("optim.weight_decay=.inf", "optim.weight_decay: Input should be a finite number"),
    ("optim.betas=[0.9, .inf]", "optim.betas.1: Input should be a finite number"),
    ("grad_clip=.inf", "grad_clip: Input should be a finite number"),
    ("schedule.min_lr=.inf", "schedule.min_lr: Input should be a finite number"),
    ("model.width=.inf", "model.width: Input should be a finite number"),
    ("data.options.image_size=.nan", "data.options.image_size: Input should be a finite number"),
    ("method_defaults.mixup.alpha=.inf", "method_defaults.mixup.alpha: Input should be a finite number"),
    ("batch_size=true", "batch_size: Input should be a valid integer (got True)"),  # trained with batch 1
    ("epochs=2.0", "epochs: Input should be a valid integer"),
    ("seed=false", "seed: Input should be a valid integer"),
    ("checkpoint_every=1.5", "checkpoint_every: Input should be a valid integer"),
    ("data.workers=true", "data.workers: Input should be a valid integer"),
    ("schedule.milestones=[true]", "schedule.milestones.0: Input should be a valid integer"),
    ("optim.lr=true", "optim.lr: Input should be a valid number"),
    ("optim.lr='0.1'", "optim.lr: Input should be a valid number"),
    ("optim.nesterov=1", "optim.nesterov: Input should be a valid boolean"),
    ("channels_last=0", "channels_last: Input should be a valid boolean"),
    # width 0 built, then wrote a failed run and an error.log in the first forward pass
    ("model.width=0", "cannot build digits-cnn with options {'width': 0}: parameter net.stages.0.0.weight has no"),
])
def test_train_refuses_non_finite_and_loosely_typed_numbers(msda, db_path, isolated_results, assignment, fragment):
    _one_line(msda("train", *FAST, "--set", assignment), fragment)
    _nothing_written(db_path, isolated_results)


def test_an_infinite_number_in_a_recipe_file(msda, tmp_path, db_path, isolated_results):
    recipe = tmp_path / "inf.yaml"
    recipe.write_text("extends: digits-mixup\nmixer: {alpha: .inf}\n")
    _one_line(msda("train", "--recipe", recipe, "--epochs", "1"), "mixer.alpha: Input should be a finite number")
    _nothing_written(db_path, isolated_results)


def test_integers_stay_accepted_where_floats_are_expected():
    from msda_cli.config import read_recipe, validate

    cfg = validate({**read_recipe("digits-mixup"), "optim": {"lr": 1, "weight_decay": 0}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, "inf"])
def test_mixers_refuse_non_finite_hyperparameters(value):
    from msda_cli.errors import MsdaError
    from msda_cli.mixing import build_mixer

    with pytest.raises(MsdaError, match="finite number"):
        build_mixer("mixup", alpha=value)


@pytest.mark.parametrize("args,fragment", [
    (["--step-size", "inf"], "--step-size must be a positive finite number"),
    (["--step-size", "nan"], "--step-size must be a positive finite number"),
    (["--eps", "nan"], "--eps must be in [0, 255]"),
    (["--eps", "inf"], "--eps must be in [0, 255]"),
])
def test_robust_refuses_non_finite_attack_sizes(msda, db_path, args, fragment):
    from msda_cli.store import Store

    Store(db_path)  # an empty store, so the options are what is checked
    _one_line(msda("robust", "nosuchrun", "--attack", "pgd", *args), fragment)


@pytest.mark.parametrize("args,fragment", [
    (["train", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["train", "--bogus"], "No such option: --bogus"),
    (["train", "--recipe"], "Option '--recipe' requires an argument"),
    (["bogus"], "No such command 'bogus'"),
    (["eval"], "Missing argument"),
    (["runs", "bogus"], "No such command 'bogus'"),
    (["robust", "x", "--eps", "abc"], "Invalid value for '--eps'"),
])
def test_usage_errors_are_one_line_pointing_at_help(msda, args, fragment):
    line = _one_line(msda(*args), fragment)
    assert line.endswith("--help`") and "╭" not in line and "Usage:" not in line


def test_help_version_and_no_arguments_keep_their_exit_codes(msda):
    assert msda("--help").code == 0 and msda("train", "--help").code == 0
    r = msda("--version")
    assert r.code == 0 and r.stdout.startswith("msda ")
    r = msda()
    assert r.code == 2 and "Usage" in r.stdout and r.stderr == ""


# ----- checkpoints that cannot be resumed ------------------------------------------------------
@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A trained 2-epoch digits run (each test copies it and makes it an interrupted one again)."""
    results = tmp_path_factory.mktemp("resume_source")
    db = train_shared_runs(results, ["--recipe", "digits-mixup", "--epochs", "2",
                                     "--set", "data.options.image_size=16"])
    (run_id,) = query(db, "SELECT id FROM run")[0]
    return results, run_id


def _execute(db, sql):
    con = sqlite3.connect(db)
    with con:
        con.execute(sql)
    con.close()


def _garbage(path):
    path.write_bytes(b"definitely not a checkpoint " * 40)


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path):
    path.write_bytes(b"")


def _model_less(path):
    torch.save({"epoch": 0, "optimizer": {}}, path)


def _unsafe(path):
    import os

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {path.parent / 'pwned'}",))

    torch.save({"model": Payload(), "epoch": 0}, path)


SAFE_LOADER = "msda reads checkpoints with weights_only=True, which never runs code from a file"


@pytest.mark.parametrize("spoil,fragment", [
    (_garbage, "is not a file torch.save wrote (Unsupported operand"),
    (_truncated, "is truncated or damaged (PytorchStreamReader failed reading zip archive"),
    (_empty, "is empty or cut short"),
    (_model_less, "is not an msda checkpoint (no model or scheduler state)"),
    (_unsafe, "holds objects other than tensors and plain containers (Trying to load unsupported GLOBAL"),
])
def test_resume_from_a_bad_checkpoint_leaves_the_run_row_alone(msda, interrupted_run, tmp_path, monkeypatch,
                                                               spoil, fragment):
    source, run_id = interrupted_run
    results = tmp_path / "results"
    shutil.copytree(source, results, dirs_exist_ok=True)
    monkeypatch.setenv("MSDA_RESULTS", str(results))
    monkeypatch.setenv("MSDA_DB", str(results / "msda.db"))
    db = results / "msda.db"
    _execute(db, "UPDATE run SET status='interrupted', epochs_done=1, finished_at=NULL")
    _execute(db, "DELETE FROM metric WHERE epoch IS NULL OR epoch >= 1")
    ckpt = results / "runs" / run_id / "checkpoint.pt"
    spoil(ckpt)
    row = query(db, "SELECT * FROM run")
    metrics = query(db, "SELECT * FROM metric ORDER BY id")
    line = _one_line(msda("train", "--resume", run_id), f"checkpoint {ckpt}", fragment)
    if "Unsupported" in fragment or "unsupported" in fragment:  # the message was cut off mid-sentence
        assert line.endswith(SAFE_LOADER)
    assert query(db, "SELECT * FROM run") == row
    assert query(db, "SELECT * FROM metric ORDER BY id") == metrics
    assert not (ckpt.parent / "pwned").exists()


def test_missing_data_creates_no_database_and_no_folder(msda, tmp_path, isolated_results):
    """A data set that is not in --data-dir is refused before the store is opened: no file at all."""
    (tmp_path / "data").mkdir()
    before = sorted(tmp_path.rglob("*"))
    for store in ([], ["--db", tmp_path / "other.db"]):
        _one_line(msda("train", "--recipe", "mutag-vanilla", "--data-dir", tmp_path / "data", *store),
                  "MUTAG: data not found")
        assert sorted(tmp_path.rglob("*")) == before  # neither the database nor a run folder
