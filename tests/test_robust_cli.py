"""`msda robust` on digits runs: every measure from the command line, stored with its settings."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import query, train_shared_runs
from msda_cli.metric_names import (
    CLEAN_TOP1, CORRUPTION_MEAN_TOP1, CORRUPTION_TOP1, DEFORM_TOP1, FGSM, NATURAL_ADV_TOP1, OOD_AUPR, PGD, ROBUST,
)

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three digits runs (two digits-cnn seeds, one resnet56) in a shared results directory."""
    results = tmp_path_factory.mktemp("robust-results")
    db = train_shared_runs(results, ["--recipe", "digits-mixup", *FAST, "--seeds", "0,1"],
                           ["--recipe", "digits-mixup", *FAST, "--arch", "resnet56"])
    runs = query(db, "SELECT id, arch, seed FROM run ORDER BY created_at")
    return results, db, runs


@pytest.fixture
def env(trained, monkeypatch):
    results, db, runs = trained
    monkeypatch.setenv("MSDA_RESULTS", str(results))
    monkeypatch.setenv("MSDA_DB", str(db))
    return db, runs


def _robust_rows(db, run_id, name):
    return [(v, json.loads(p)) for v, p in query(
        db, "SELECT value, params FROM metric WHERE run_id=? AND kind=? AND name=? ORDER BY id", run_id, ROBUST, name)]


def test_fgsm_and_pgd_white_box(msda, env):
    db, runs = env
    target = runs[0][0]
    r = msda("robust", target, "--attack", "fgsm", "--n-examples", "64")
    assert r.code == 0, r.stderr
    (value, params), = _robust_rows(db, target, FGSM)
    assert params == {"attack": "fgsm", "eps": 8, "n_examples": 64, "mode": "white-box"} and 0 <= value <= 100
    r = msda("robust", target, "--attack", "pgd", "--eps", "8", "--step-size", "2", "--steps", "5",
             "--n-examples", "64")
    assert r.code == 0, r.stderr
    (pgd, params), = _robust_rows(db, target, PGD)
    assert params["mode"] == "white-box" and params["steps"] == 5 and params["source_run"] is None
    clean = _robust_rows(db, target, CLEAN_TOP1)[-1][0]
    assert pgd <= clean
    assert PGD in r.stdout and "white-box" in r.stdout


def test_transfer_attacks_are_gray_box_for_the_same_arch_and_black_box_otherwise(msda, env):
    db, runs = env
    (a, _, _), (b, _, _), (other, arch, _) = runs
    assert arch == "resnet56"
    assert msda("robust", a, "--attack", "pgd", "--source", b, "--steps", "3", "--n-examples", "32").code == 0
    assert msda("robust", a, "--attack", "pgd", "--source", other, "--steps", "3", "--n-examples", "32").code == 0
    modes = [(p["mode"], p["source_run"]) for _, p in _robust_rows(db, a, PGD) if p["source_run"]]
    assert modes[-2:] == [("gray-box", b), ("black-box", other)]


def test_gray_or_black_box_is_one_rule_for_the_command_and_the_python_api(msda, env):
    """Two runs of one architecture name whose model option changes the network are black-box, from the command as
    from evaluate_attack (the command used to compare the config's architecture name)."""
    from msda_cli.robust import evaluate_attack
    from msda_cli.robust.attacks import same_architecture
    from msda_cli.runs import load_run
    from msda_cli.store import Store

    db, runs = env
    a = runs[0][0]
    r = msda("train", "--recipe", "digits-mixup", *FAST, "--set", "model.width=8", "--name", "narrow")
    assert r.code == 0, r.stderr
    (narrow,), = query(db, "SELECT id FROM run WHERE name='narrow'")
    assert msda("robust", a, "--attack", "pgd", "--source", narrow, "--steps", "2", "--n-examples", "16").code == 0
    (_, params), = [(v, p) for v, p in _robust_rows(db, a, PGD) if p["source_run"] == narrow]
    store = Store(db)
    target, source = load_run(store, a), load_run(store, narrow)
    assert source.config.arch == target.config.arch and not same_architecture(source.model, target.model)
    rows = evaluate_attack(target.model, target.test_set, source_model=source.model, steps=2, n_examples=16,
                           progress=False)
    assert params["mode"] == rows[-1][3]["mode"] == "black-box"
    assert same_architecture(load_run(store, runs[1][0]).model, target.model)  # another seed: gray-box


def test_ood_deform_and_corruptions(msda, env, tmp_path):
    db, runs = env
    target = runs[0][0]
    # OOD set: a folder of class folders with noise images.
    rng = np.random.default_rng(0)
    for cls in ("noise", "stripes"):
        (tmp_path / "ood" / cls).mkdir(parents=True)
        for i in range(10):
            arr = (rng.random((20, 20)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "ood" / cls / f"{i}.png")
    # CIFAR-C layout for the digits test set: 5 severities x N images, HWC uint8, labels.npy.
    from msda_cli.data import build_dataset

    test = build_dataset("digits", train=False, image_size=16)
    x = np.stack([test[i][0].numpy() for i in range(len(test))]).transpose(0, 2, 3, 1)
    corrupt = tmp_path / "digits-c"
    corrupt.mkdir()
    sev = [np.clip(x + rng.normal(0, 0.1 * s, x.shape), 0, 1) for s in range(1, 6)]
    np.save(corrupt / "gaussian_noise.npy", (np.concatenate(sev) * 255).astype(np.uint8))
    np.save(corrupt / "labels.npy", np.tile(test.targets.numpy(), 5))

    r = msda("robust", target, "--ood", str(tmp_path / "ood"), "--deform", "--corruptions", str(corrupt),
             "--n-examples", "100")
    assert r.code == 0, r.stderr
    (aupr, params), = _robust_rows(db, target, OOD_AUPR)
    assert 0 <= aupr <= 100 and params["n_out"] == 20
    deform = {p["deformation"] for _, p in _robust_rows(db, target, DEFORM_TOP1)}
    assert deform == {"rotate20", "rotate40", "shear28.6", "shear57.3",
                      "zoomin60", "zoomin80", "zoomout120", "zoomout140"}
    severities = [p["severity"] for _, p in _robust_rows(db, target, CORRUPTION_TOP1)]
    assert severities == [1, 2, 3, 4, 5]
    assert len(_robust_rows(db, target, CORRUPTION_MEAN_TOP1)) == 1
    assert "missing" in r.stderr  # 14 of the 15 standard corruptions are absent: said, not fatal


def test_natural_adversarial_folder(msda, env, tmp_path):
    db, runs = env
    target = runs[0][0]
    for cls in ("3", "7"):  # a subset of the model's classes, as ImageNet-A is of ImageNet's
        (tmp_path / "nat" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray((np.random.default_rng(i).random((16, 16)) * 255).astype(np.uint8)).save(
                tmp_path / "nat" / cls / f"{i}.png")
    r = msda("robust", target, "--natural-adversarial", str(tmp_path / "nat"))
    assert r.code == 0, r.stderr
    (value, params), = _robust_rows(db, target, NATURAL_ADV_TOP1)
    assert params["n_examples"] == 8 and params["protocol"] == "imagenet-a-200"


@pytest.mark.parametrize("args,message", [
    (["nope", "--attack", "pgd"], "unknown run id"),
    (["{run}", "--attack", "pgd", "--eps", "-1"], "--eps"),
    (["{run}", "--attack", "cw"], "unknown attack"),
    (["{run}"], "name a measure"),
    (["{run}", "--corruptions", "/nonexistent"], "/nonexistent"),
    (["{run}", "--natural-adversarial", "/nonexistent"], "/nonexistent"),
    (["{run}", "--ood", "/nonexistent"], "nonexistent"),
    (["{run}", "--attack", "fgsm", "--source", "{run}"], "--source"),
    (["{run}", "--attack", "pgd", "--source", "{run}"], "the attacked run itself"),
    (["{run}", "--attack", "pgd", "--source", "{prefix}"], "the attacked run itself"),
    (["{run}", "--attack", "pgd", "--steps", "0"], "--steps"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(msda, env, args, message):
    db, runs = env
    before = query(db, "SELECT count(*) FROM metric")
    r = msda("robust", *[a.format(run=runs[0][0], prefix=runs[0][0][:5]) for a in args])
    assert r.code == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr
    assert query(db, "SELECT count(*) FROM metric") == before


def test_source_trained_on_other_classes_is_refused(msda, env, tmp_path):
    db, runs = env
    for cls in ("a", "b"):
        (tmp_path / "folder" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray((np.random.default_rng(i).random((16, 16)) * 255).astype(np.uint8)).convert("L").save(
                tmp_path / "folder" / cls / f"{i}.png")
    r = msda("train", "--recipe", "digits-vanilla", "--set", "dataset=imagefolder", "--set", "data.options={}",
             "--set", "data.options.image_size=16", "--data-dir", str(tmp_path / "folder"),
             "--set", "batch_size=4", "--epochs", "1")
    assert r.code == 0, r.stderr
    source = query(db, "SELECT id FROM run WHERE dataset='imagefolder'")[0][0]
    before = query(db, "SELECT count(*) FROM metric")
    r = msda("robust", runs[0][0], "--attack", "pgd", "--source", source)
    assert r.code == 2 and "other classes" in r.stderr
    assert query(db, "SELECT count(*) FROM metric") == before


def test_transfer_attack_reads_both_runs_data_from_data_dir(msda, tmp_path, monkeypatch):
    import shutil

    results = tmp_path / "results-moved"
    results.mkdir()
    monkeypatch.setenv("MSDA_RESULTS", str(results))
    monkeypatch.setenv("MSDA_DB", str(results / "msda.db"))
    for cls in ("a", "b"):
        for split in ("train", "val"):
            (tmp_path / "old" / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray((np.random.default_rng(i).random((16, 16, 3)) * 255).astype(np.uint8)).save(
                    tmp_path / "old" / split / cls / f"{i}.png")
    r = msda("train", "--recipe", "digits-vanilla", "--set", "dataset=imagefolder", "--set", "data.options={}",
             "--set", "data.options.image_size=16", "--data-dir", tmp_path / "old", "--set", "batch_size=4",
             "--seeds", "0,1", "--epochs", "1")
    assert r.code == 0, r.stderr
    shutil.move(tmp_path / "old", tmp_path / "new")  # the data moved since training
    target, source = [i for (i,) in query(results / "msda.db", "SELECT id FROM run ORDER BY created_at")]
    r = msda("robust", target, "--attack", "pgd", "--steps", "2", "--source", source, "--data-dir", tmp_path / "new")
    assert r.code == 0, r.stderr
    (_, params), = _robust_rows(results / "msda.db", target, PGD)
    assert params["mode"] == "gray-box" and params["source_run"] == source
