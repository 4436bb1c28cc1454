"""`msda train` / `eval` / `runs` end to end on the embedded digits data."""

import json

import pytest
import torch

from conftest import query
from msda_cli.metric_names import (
    ECE, EPOCH_TIME, EVAL, IMAGES_PER_S, LR, NLL, TEST_TOP1, TOP1, TOP5, TRAIN, TRAIN_LOSS, TRAIN_TIME,
)

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "1"]


def test_train_stores_run_metrics_and_checkpoint(msda, db_path, isolated_results):
    r = msda("train", "--recipe", "digits-vanilla", *FAST)
    assert r.code == 0, r.stderr
    runs = query(db_path, "SELECT id, status, epochs_done, method, arch, dataset, seed, checkpoint, error FROM run")
    assert len(runs) == 1
    run_id, status, epochs_done, method, arch, dataset, seed, ckpt, error = runs[0]
    assert (status, epochs_done, method, arch, dataset, seed, error) == (
        "finished", 1, "vanilla", "digits-cnn", "digits", 0, None)
    final = dict(query(db_path, "SELECT name, value FROM metric WHERE run_id=? AND kind=? AND epoch IS NULL",
                       run_id, EVAL))
    assert set(final) == {TOP1, TOP5, NLL, ECE}
    assert 0 <= final[TOP1] <= final[TOP5] <= 100 and final[NLL] > 0 and 0 <= final[ECE] <= 100
    per_epoch = {n for (n,) in query(db_path, "SELECT name FROM metric WHERE run_id=? AND epoch=0", run_id)}
    assert {TRAIN_LOSS, LR, TEST_TOP1, EPOCH_TIME} <= per_epoch
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 0 and {"model", "optimizer", "scheduler", "rng", "config"} <= set(state)
    assert (isolated_results / "runs" / run_id / "config.json").is_file()
    assert run_id in r.stdout


def test_lists_expand_into_one_run_per_combination(msda, db_path):
    r = msda("train", "--recipe", "digits-mixup", "--method", "vanilla,mixup", "--seeds", "0,1", *FAST)
    assert r.code == 0, r.stderr
    rows = query(db_path, "SELECT method, seed, status, config FROM run ORDER BY method, seed")
    assert [(m, s, st) for m, s, st, _ in rows] == [
        ("mixup", 0, "finished"), ("mixup", 1, "finished"), ("vanilla", 0, "finished"), ("vanilla", 1, "finished")]
    configs = [json.loads(c) for *_, c in rows]
    # The stored config holds every hyperparameter, defaults included.
    assert configs[0]["mixer"] == {"alpha": 1.0, "mask_mode": "batch", "smoothing": 0.0}
    assert configs[2]["mixer"] == {"smoothing": 0.0}
    assert all(c["optim"]["lr"] == 0.05 and c["data"]["options"]["image_size"] == 16 for c in configs)


def test_same_seed_gives_same_result_and_other_seed_differs(msda, db_path):
    for seeds in ("0", "0", "1"):
        assert msda("train", "--recipe", "digits-vanilla", "--seeds", seeds, *FAST).code == 0
    nll = [v for (v,) in query(db_path, "SELECT m.value FROM metric m JOIN run r ON r.id=m.run_id "
                                        "WHERE m.name=? AND m.kind=? ORDER BY r.created_at", NLL, EVAL)]
    assert nll[0] == nll[1] and nll[0] != nll[2]


def test_the_largest_seed_trains_and_every_epoch_seed_fits_numpy(msda, db_path):
    from msda_cli.engine.train import epoch_seed

    assert msda("train", "--recipe", "digits-vanilla", "--seeds", str(2**32 - 1), *FAST).code == 0
    assert query(db_path, "SELECT seed, status FROM run") == [(2**32 - 1, "finished")]
    assert epoch_seed(3, 5, 1) == 3 * 1_000_003 + 5 * 7919 + 104_729  # small seeds: the formula itself
    assert all(0 <= epoch_seed(2**32 - 1, e, r) < 2**32 for e in (0, 999) for r in (0, 7))


def test_streams_of_one_run_and_orders_of_neighbouring_seeds_are_not_shared():
    import torch
    from torch.utils.data import DistributedSampler

    from msda_cli.engine.train import SAMPLER_SEED_STRIDE, data_seed, epoch_seed

    for seed in (0, 1, 7, 2**32 - 1):  # the mixer's and the data's generators draw different words
        s = epoch_seed(seed, 3, 0)
        assert 0 <= data_seed(s) < 2**32
        a, b = torch.Generator().manual_seed(s), torch.Generator().manual_seed(data_seed(s))
        assert not torch.equal(torch.randint(0, 2**31, (8,), generator=a), torch.randint(0, 2**31, (8,), generator=b))

    def order(seed, epoch):
        sampler = DistributedSampler(range(100), num_replicas=1, rank=0, seed=seed * SAMPLER_SEED_STRIDE)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 1) != order(1, 0) and order(2, 5) != order(3, 4)  # seed s at epoch e+1 is not seed s+1 at e


@pytest.mark.parametrize("args,message", [
    (["--recipe", "nope"], "unknown recipe 'nope'"),
    (["--recipe", "digits-mixup", "--method", "supermix"], "unknown method 'supermix'"),
    (["--recipe", "digits-mixup", "--arch", "resnet9000"], "unknown architecture 'resnet9000'"),
    (["--recipe", "digits-mixup", "--set", "dataset=imagenet-z"], "unknown dataset 'imagenet-z'"),
    (["--recipe", "digits-mixup", "--set", "optim.lr=-1"], "optim.lr"),
    (["--recipe", "digits-mixup", "--set", "optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["--recipe", "digits-mixup", "--epochs", "0"], "--epochs"),
    (["--recipe", "digits-mixup", "--set", "mixer.alpha=-1"], "alpha"),
    (["--recipe", "digits-mixup", "--seeds", "a,b"], "--seeds"),
    (["--recipe", "digits-mixup", "--seeds", str(2**32)], "seed: Input should be less than 4294967296"),
    (["--recipe", "digits-mixup", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
    (["--recipe", "digits-mixup", "--set", "model.nope=1"], "no option 'nope'"),
    (["--recipe", "digits-mixup", "--set", "model.width=-3"], "cannot build digits-cnn"),
    (["--resume", "deadbeef"], "unknown run id 'deadbeef'"),
    ([], "--recipe"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(msda, db_path, args, message):
    r = msda("train", *args)
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    if db_path.exists():
        assert query(db_path, "SELECT count(*) FROM run") == [(0,)]
        assert query(db_path, "SELECT count(*) FROM metric") == [(0,)]


def test_bad_recipe_file_type(msda, tmp_path, db_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\narch: digits-cnn\nepochs: ten\n")
    r = msda("train", "--recipe", str(bad))
    assert r.code == 2 and "epochs" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_resuming_a_finished_run_is_refused(msda, db_path):
    assert msda("train", "--recipe", "digits-vanilla", *FAST).code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    r = msda("train", "--resume", run_id)
    assert r.code == 2 and "already finished" in r.stderr
    assert query(db_path, "SELECT count(*) FROM metric WHERE kind='eval'") == [(4,)]


def test_eval_recomputes_the_stored_final_metrics(msda, db_path):
    assert msda("train", "--recipe", "digits-mixup", *FAST).code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    r = msda("eval", run_id[:5], "--format", "csv")  # a unique prefix is enough
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"run,dataset,{TOP1},{TOP5},{ECE},{NLL}"
    rows = query(db_path, "SELECT name, value, params FROM metric WHERE kind=? ORDER BY id", EVAL)
    trained, evaluated = dict((n, v) for n, v, _ in rows[:4]), dict((n, v) for n, v, _ in rows[4:])
    assert set(evaluated) == {TOP1, TOP5, NLL, ECE}
    for name in trained:
        assert evaluated[name] == pytest.approx(trained[name], abs=1e-4)
    assert json.loads(rows[-1][2])["n_examples"] == 360


def test_eval_errors(msda, db_path, isolated_results):
    assert msda("eval", "nope").code == 2
    assert msda("train", "--recipe", "digits-vanilla", *FAST).code == 0
    (run_id, ckpt) = query(db_path, "SELECT id, checkpoint FROM run")[0]
    with open(ckpt, "wb") as f:
        f.write(b"not a checkpoint")
    r = msda("eval", run_id)
    assert r.code == 2 and "cannot be read" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert query(db_path, "SELECT count(*) FROM metric WHERE kind='eval'") == [(4,)]


def test_runs_list_show_rm(msda, db_path, isolated_results):
    assert msda("train", "--recipe", "digits-vanilla", "--seeds", "0,1", *FAST).code == 0
    ids = [i for (i,) in query(db_path, "SELECT id FROM run ORDER BY created_at")]
    r = msda("runs", "list", "--format", "csv")
    assert r.code == 0 and all(i in r.stdout for i in ids) and "finished" in r.stdout
    r = msda("runs", "list", "--format", "json")
    assert {row["id"] for row in json.loads(r.stdout)} == set(ids)
    r = msda("runs", "show", ids[0])
    assert r.code == 0 and "digits-cnn" in r.stdout and TRAIN_LOSS in r.stdout
    shown = json.loads(msda("runs", "show", ids[0], "--format", "json").stdout)
    assert shown["id"] == ids[0] and shown["config"]["arch"] == "digits-cnn"
    assert {(m["kind"], m["name"]) for m in shown["metrics"] if m["epoch"] is None} >= {(EVAL, TOP1), (EVAL, ECE)}
    assert "| epoch |" in " ".join(msda("runs", "show", ids[0], "--format", "markdown").stdout.split())
    assert msda("runs", "rm", ids[0], "--yes").code == 0
    assert [i for (i,) in query(db_path, "SELECT id FROM run")] == [ids[1]]
    assert query(db_path, "SELECT count(*) FROM metric WHERE run_id=?", ids[0]) == [(0,)]
    assert not (isolated_results / "runs" / ids[0]).exists()
    assert msda("runs", "rm", "nope").code == 2
    assert msda("runs", "list", "--format", "xml").code == 2
    assert msda("runs", "list", "--status", "sleeping").code == 2


def test_recipes_list_and_show(msda):
    r = msda("recipes", "list", "--format", "markdown")
    assert r.code == 0 and "| digits-mixup | digits | digits-cnn | mixup |" in " ".join(r.stdout.split())
    r = msda("recipes", "show", "digits-cutmix")  # as written: the base file first, then the recipe
    assert r.code == 0 and r.stdout.index("_digits.yaml") < r.stdout.index("digits-cutmix.yaml")
    assert "method: cutmix" in r.stdout and "extends: _digits" in r.stdout and "# Shared settings" in r.stdout
    r = msda("recipes", "show", "digits-cutmix", "--resolved")
    assert r.code == 0 and "method: cutmix" in r.stdout and "dataset: digits" in r.stdout and "extends" not in r.stdout
    assert msda("recipes", "show", "nope").code == 2


def test_a_failing_run_stores_its_error_and_says_so_in_one_line(msda, db_path, isolated_results, monkeypatch):
    import msda_cli.engine.train as train_mod

    def boom(*args, **kwargs):
        raise RuntimeError("loss is nan")

    monkeypatch.setattr(train_mod, "train_one_epoch", boom)
    r = msda("train", "--recipe", "digits-vanilla", *FAST)
    assert r.code == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "loss is nan" in r.stderr
    (run_id, status, error) = query(db_path, "SELECT id, status, error FROM run")[0]
    assert status == "failed" and "RuntimeError: loss is nan" in error
    assert "Traceback" in (isolated_results / "runs" / run_id / "error.log").read_text()


def test_run_folder_has_a_log_line_per_epoch(msda, db_path, isolated_results):
    assert msda("train", "--recipe", "digits-vanilla", *FAST[:-1], "2").code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    lines = (isolated_results / "runs" / run_id / "log.txt").read_text().splitlines()
    assert len(lines) == 2 and "epoch 2/2" in lines[1] and "test top-1" in lines[1]


def test_every_training_sample_is_seen_each_epoch(msda, db_path):
    # 1437 digits at batch 100: 14 full batches and one of 37, none dropped.
    assert msda("train", "--recipe", "digits-vanilla", "--set", "data.options.image_size=16",
                "--set", "batch_size=100", "--epochs", "1").code == 0
    m = dict(query(db_path, "SELECT name, value FROM metric WHERE kind=? AND epoch IS NULL", TRAIN))
    assert round(m[IMAGES_PER_S] * m[TRAIN_TIME]) == 1437


def test_mlp_trains_on_flattened_images(msda, db_path):
    r = msda("train", "--recipe", "digits-mixup", "--arch", "mlp", *FAST)
    assert r.code == 0, r.stderr
    assert query(db_path, "SELECT arch, status FROM run") == [("mlp", "finished")]


def test_eval_on_a_data_set_the_model_does_not_fit_is_one_clear_line(msda, db_path, tmp_path):
    import numpy as np
    from PIL import Image

    for cls in range(10):  # RGB class folders: the digits model takes one channel
        folder = tmp_path / "rgb" / "val" / str(cls)
        folder.mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 3), 20 * cls, np.uint8)).save(folder / "a.png")
        (tmp_path / "rgb" / "train" / str(cls)).mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 3), 20 * cls, np.uint8)).save(tmp_path / "rgb" / "train" / str(cls) / "a.png")
    assert msda("train", "--recipe", "digits-vanilla", *FAST).code == 0
    (run_id,) = query(db_path, "SELECT id FROM run")[0]
    r = msda("eval", run_id, "--dataset", "imagefolder", "--data-dir", tmp_path / "rgb")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "3 channels" in r.stderr and "size mismatch" in r.stderr
    assert query(db_path, "SELECT count(*) FROM metric WHERE kind='eval'") == [(4,)]


def test_mixed_precision_training_on_cpu(isolated_results, db_path):
    """bf16 autocast through Accelerate (a fresh process: Accelerate's state is per process)."""
    import os
    import subprocess

    from conftest import python_cmd

    proc = subprocess.run(python_cmd("train", "--recipe", "digits-mixupe", *FAST, "--set", "precision=bf16"),
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (status, config), = query(db_path, "SELECT status, config FROM run")
    assert status == "finished" and json.loads(config)["precision"] == "bf16"
    (nll,), = query(db_path, "SELECT value FROM metric WHERE kind=? AND name=?", EVAL, NLL)
    assert nll == nll and nll > 0  # finite, not NaN


def test_version_and_help(msda):
    from msda_cli import __version__

    r = msda("--version")
    assert r.code == 0 and r.stdout.strip() == f"msda {__version__}"
    r = msda("--help")
    assert r.code == 0 and all(c in r.stdout for c in ("train", "eval", "robust", "report", "subsample", "analyze"))
