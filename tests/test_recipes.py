"""The paper recipes (`recipes/*.yaml`): each validates, states the paper's settings, builds its
data set (from small files in the real on-disk format) and its model, and trains two steps."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import query
from fakedata import write_cifar100, write_dataset
from msda_cli.config import check_names, list_recipe_names, read_recipe, switch_method, validate
from msda_cli.data.tu import TU_SETS
from msda_cli.engine import build
from msda_cli.metric_names import ECE, EVAL, NLL, TOP1, TOP5, TRAIN_LOSS
from msda_cli.mixing import MIXERS, build_mixer
from msda_cli.models import model_options

NAMES = list_recipe_names()
STEP_BATCH = 3  # odd on purpose: every recipe's mixer must take any batch size
# The training steps (batch STEP_BATCH - 1) run at a small resolution, so that PyramidNet-200 or
# ResNet-50 steps take a fraction of a second on a CPU; ResNet-50 (stride 32) keeps 2x2 final maps.
STEP_SIZE = {"resnet50": 64, "vit-b16": 32, "coatnet-0": 32}  # timm's nets step at 32 px
STEP_SIZE_DEFAULT = 16
SPECTROGRAM_ARCHS = {"lenet", "vgg11", "vgg13"}


def config(name: str):
    return validate(read_recipe(name), source=name)


@pytest.fixture(scope="module")
def configs():
    return {name: config(name) for name in NAMES}


# ----- every recipe validates and is self-consistent ----------------------------------------


def test_every_recipe_validates_names_and_method_defaults(configs):
    assert len(NAMES) >= 80
    for name, cfg in configs.items():
        check_names(cfg)
        assert cfg.description and cfg.paper_table, name
        for method, hparams in cfg.method_defaults.items():
            build_mixer(method, **hparams)
        # `--method M` on any recipe of the same setting trains M as M's own recipe does
        own = {k: v for k, v in cfg.mixer.items() if k != "smoothing"}
        assert cfg.method in cfg.method_defaults, f"{name}: method_defaults lacks {cfg.method}"
        assert cfg.method_defaults[cfg.method] == own, name
        assert cfg.schedule.warmup_epochs < cfg.epochs
        assert all(0 < m < cfg.epochs for m in cfg.schedule.milestones), name


def test_switching_method_gives_the_sibling_recipe(configs):
    """A leaf with another method of its base equals that method's own leaf (up to the name)."""
    for a, b in [("cifar100-gmix", "cifar100-hmix"), ("cifar100-dcutmix", "cifar100-mixup-pyramidnet110"),
                 ("imagenet-hmix", "imagenet-mixup"), ("svhn-mixup", "svhn-mixupe"),
                 ("imagenet100-small-crop-mixup", "imagenet100-small-crop-cutmix")]:
        switched = validate(switch_method(read_recipe(a), configs[b].method))
        assert switched.model_dump(exclude={"name"}) == configs[b].model_dump(exclude={"name"}), (a, b)


def test_digits_recipes_cover_every_method(configs):
    digits = {cfg.method for name, cfg in configs.items() if name.startswith("digits-")}
    assert digits == set(MIXERS)
    base = configs["digits-mixup"].method_defaults
    assert set(base) == set(MIXERS)
    assert all(configs[f"digits-{m}"].mixer == base[m] for m in MIXERS)


# The papers' stated settings (numbers from the paper texts and the authors' commands).
THIRD = 1 / 3
PAPER = {
    # hmix-gmix Table 2: 300 epochs, SGD lr 0.2; alpha 1 (Mixup/CutMix/both), HMix (1, r 0.5), GMix 0.5
    "cifar100-gmix": dict(dataset="cifar100", epochs=300, lr=0.2, opt="sgd", mixer={"alpha": 0.5}),
    "cifar100-hmix": dict(epochs=300, lr=0.2, mixer={"alpha": 1.0, "r": 0.5}),
    "cifar100-mixup-cutmix": dict(epochs=300, lr=0.2, mixer={"alpha": 1.0, "cutmix_alpha": 1.0, "q": 0.5}),
    # hmix-gmix Table 3: ResNet-50, 300 epochs, SGD lr 0.1, Mixup 0.8, HMix r 0.75, GMix 1
    "imagenet-mixup": dict(dataset="imagenet", arch="resnet50", epochs=300, lr=0.1, mixer={"alpha": 0.8}),
    "imagenet-hmix": dict(arch="resnet50", epochs=300, lr=0.1, mixer={"alpha": 1.0, "r": 0.75}),
    "imagenet-gmix": dict(epochs=300, lr=0.1, mixer={"alpha": 1.0}),
    # hmix-gmix Table 1: ImageNet-100 at 64 px, crop scenarios
    "imagenet100-large-crop-mixup": dict(dataset="imagenet100", options={"image_size": 64, "crop": "large"}),
    "imagenet100-small-crop-cutmix": dict(dataset="imagenet100", options={"image_size": 64, "crop": "small"}),
    # MixupE 4.1: batch 100, lr 0.1, momentum 0.9, wd 1e-4, 200 epochs, /10 at 100 and 150, eta 0.001
    "cifar100-mixupe": dict(dataset="cifar100", batch=100, lr=0.1, momentum=0.9, wd=1e-4, epochs=200,
                            milestones=[100, 150], gamma=0.1, mixer={"alpha": 1.0, "eta": 0.001, "variant": "paper"}),
    "cifar10-mixupe": dict(dataset="cifar10", batch=100, lr=0.1, epochs=200, milestones=[100, 150]),
    "svhn-mixupe": dict(dataset="svhn", batch=100, lr=0.1, epochs=200, mixer={"alpha": 1.0, "eta": 0.001,
                                                                                "variant": "paper"}),
    "tiny-imagenet-mixup": dict(dataset="tiny-imagenet", batch=100, epochs=200, mixer={"alpha": 0.2}),
    "imagenet-mixupe": dict(arch="resnet50", batch=4096, lr=1.6, wd=1e-4,
                            mixer={"alpha": 0.2, "eta": 0.001, "variant": "paper"}),
    # MixupE 4.2: MLP, Adam lr 1e-3, batch 100, 25 epochs
    "abalone-mixupe": dict(dataset="abalone", arch="mlp", opt="adam", lr=1e-3, batch=100, epochs=25),
    "iris-vanilla": dict(dataset="iris", arch="mlp", opt="adam", lr=1e-3, batch=100, epochs=25),
    # DCutMix authors' commands: PyramidNet-110 K 5 alpha 0.2 lr 0.25 batch 64 wd 4e-5; -200 K 5 alpha 1 p 0.5;
    # CIFAR-10 PyramidNet-200 K 3 alpha 1/3
    "cifar100-dcutmix": dict(dataset="cifar100", arch="pyramidnet110", lr=0.25, batch=64, wd=4e-5, epochs=300,
                             mixer={"k": 5, "alpha": 0.2, "prob": 1.0, "mask_mode": "sample"}),
    "cifar100-dcutmix-pyramidnet200": dict(arch="pyramidnet200", lr=0.25, batch=64, wd=4e-5,
                                           mixer={"k": 5, "alpha": 1.0, "prob": 0.5, "mask_mode": "sample"}),
    "cifar10-dcutmix": dict(dataset="cifar10", arch="pyramidnet200", lr=0.25, batch=64,
                            mixer={"k": 3, "alpha": THIRD, "prob": 1.0, "mask_mode": "sample"}),
    "cifar100-dmixup": dict(arch="pyramidnet110", mixer={"k": 3, "alpha": THIRD}),
    "cifar100-dmixup-pyramidnet200": dict(arch="pyramidnet200", mixer={"k": 3, "alpha": 1.0}),
    "cifar10-dmixup": dict(arch="pyramidnet200", mixer={"k": 5, "alpha": 0.2}),
    "imagenet-saliency-dcutmix": dict(arch="resnet50", mixer={"k": 3, "alpha": THIRD, "prob": 1.0,
                                                              "mask_mode": "sample"}),
    "cifar100-dcutmix-preactresnet18": dict(arch="preactresnet18", epochs=300, lr=0.2),
    # the authors' CIFAR-100 commands (snu-mllab/PuzzleMix and snu-mllab/Co-Mixup READMEs)
    "cifar100-puzzlemix": dict(arch="preactresnet18", epochs=300, lr=0.2, batch=100, mixer={
        "alpha": 1.0, "beta": 1.2, "gamma": 0.5, "eta": 0.2, "neigh_size": 4, "n_labels": 3, "transport": True,
        "t_eps": 0.8, "t_size": 4, "adv_p": 0.0, "adv_eps": 10.0, "clean_lam": 0.0}),
    "cifar100-comixup": dict(arch="preactresnet18", epochs=300, lr=0.2, batch=100, mixer={
        "alpha": 2.0, "beta": 0.32, "gamma": 1.0, "eta": 0.05, "omega": 0.001, "thres": 0.83, "thres_type": "hard",
        "block_num": 4, "part": 20, "niter": 4, "set_resolve": True, "clean_lam": 1.0}),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipes_carry_the_papers_settings(configs, name):
    cfg, want = configs[name], PAPER[name]
    got = dict(dataset=cfg.dataset, arch=cfg.arch, epochs=cfg.epochs, lr=cfg.optim.lr, opt=cfg.optim.name,
               batch=cfg.batch_size, momentum=cfg.optim.momentum, wd=cfg.optim.weight_decay,
               milestones=cfg.schedule.milestones, gamma=cfg.schedule.gamma, mixer=cfg.mixer,
               options=cfg.data.options)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), (name, key)
        elif key == "mixer":
            assert got[key].keys() == value.keys() and all(
                got[key][k] == pytest.approx(v) if isinstance(v, float) else got[key][k] == v
                for k, v in value.items()), (name, got[key])
        else:
            assert got[key] == value, (name, key, got[key])


def test_recipes_list_csv_names_every_recipe_with_its_paper_table(msda):
    r = msda("recipes", "list", "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["recipe"] for row in rows] == NAMES
    for row in rows:
        raw = read_recipe(row["recipe"])
        assert row["reproduces"] == raw["paper_table"] and row["reproduces"], row
        assert (row["dataset"], row["arch"], row["method"]) == (raw["dataset"], raw["arch"], raw["method"])


# ----- every recipe builds its data and model and trains two steps --------------------------


def group_key(cfg) -> str:
    return json.dumps([cfg.dataset, cfg.data.options], sort_keys=True)


def small(x: torch.Tensor, arch: str) -> torch.Tensor:
    if arch in SPECTROGRAM_ARCHS:  # linear layers sized for the 160×101 spectrogram
        return x
    size = STEP_SIZE.get(arch, STEP_SIZE_DEFAULT)
    if x.dim() == 4 and x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


@pytest.fixture
def one_thread():
    """Two shared cores: one intra-op thread avoids oversubscription stalls in the big models."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def two_steps(cfg, model, x, y, num_classes) -> list[float]:
    mixer = build.build_method(cfg)
    optimizer = build.build_optimizer(cfg, model)
    before = [p.detach().clone() for p in model.parameters()]
    g = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for _ in range(2):
        out = mixer.loss(model, x, y, num_classes, generator=g)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        assert out.logits.shape == (x.shape[0], num_classes)
        losses.append(float(out.loss.detach()))
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters())), "the steps changed nothing"
    return losses


def test_every_recipe_builds_data_and_model_and_trains_two_steps(configs, tmp_path, one_thread):
    torch.manual_seed(0)
    groups: dict[str, list[str]] = {}
    for name, cfg in configs.items():
        groups.setdefault(group_key(cfg), []).append(name)
    stepped: set[tuple[str, str]] = set()
    for g, names in enumerate(groups.values()):
        first = configs[names[0]]
        if first.dataset in TU_SETS:  # graph batches: test_data_tu steps every graph recipe
            continue
        root = write_dataset(first.dataset, tmp_path / f"data{g}", first.data.options)
        data = {}
        for train in (True, False):
            cfg = first.model_copy(update={"data": first.data.model_copy(update={"root": str(root)})})
            ds = build.build_data(cfg, train=train)
            info = ds.info
            x0, y0 = ds[0]
            shape = (info.in_chans, info.image_size, info.image_size) if info.is_image else (info.in_chans,)
            spect = info.name == "speech-commands"  # 160×101 spectrograms of z-scores, not square [0, 1] pixels
            shape = (1, 160, 101) if spect else shape
            assert len(ds) >= 1 and tuple(x0.shape) == shape and 0 <= y0 < info.num_classes, (names[0], shape)
            if info.is_image and not spect:
                assert 0 <= float(x0.min()) and float(x0.max()) <= 1
            data[train] = ds
        ds = data[True]
        info = ds.info
        assert data[False].info.num_classes == info.num_classes
        if first.data.options.get("image_size"):
            assert info.image_size == first.data.options["image_size"]
        idx = [i % len(ds) for i in range(STEP_BATCH)]
        x = torch.stack([ds[i][0] for i in idx])
        y = torch.tensor([ds[i][1] for i in idx])
        models = {}
        for name in names:
            cfg = configs[name]
            arch_key = json.dumps([cfg.arch, cfg.model], sort_keys=True)
            if arch_key not in models:
                models[arch_key] = model = build.build_network(cfg, info)
                with torch.no_grad():  # the recipe's full resolution goes through the network
                    assert model.eval()(x[:1]).shape == (1, info.num_classes)
            model = models[arch_key]
            # every recipe's own mixer takes its batch (cheap, no model)
            mixed = build.build_method(cfg)(x, y, info.num_classes, generator=torch.Generator().manual_seed(1))
            assert mixed.x.shape == x.shape and torch.allclose(mixed.y.sum(1), torch.ones(len(y)))
            if (cfg.arch, cfg.method) in stepped:
                continue
            stepped.add((cfg.arch, cfg.method))
            if "img_size" in model_options(cfg.arch):  # built for one input size: step a copy built for the step's
                small_key = arch_key + "@step"
                if small_key not in models:
                    sized = {**cfg.model, "img_size": STEP_SIZE[cfg.arch]}
                    models[small_key] = build.build_network(cfg.model_copy(update={"model": sized}), info)
                model = models[small_key]
            losses = two_steps(cfg, model, small(x[:STEP_BATCH - 1], cfg.arch), y[:STEP_BATCH - 1],
                               info.num_classes)
            assert all(math.isfinite(v) and v >= 0 for v in losses), (name, losses)
    every_pair = {(c.arch, c.method) for c in configs.values() if c.dataset not in TU_SETS}
    assert stepped == every_pair


# ----- one recipe end to end through the CLI ------------------------------------------------


def test_train_cifar100_gmix_recipe_end_to_end(msda, db_path, tmp_path, one_thread):
    data_dir = tmp_path / "cifar"
    write_cifar100(data_dir, n_train=24, n_test=12)
    r = msda("train", "--recipe", "cifar100-gmix", "--data-dir", data_dir, "--epochs", "1",
             "--arch", "preactresnet18", "--set", "batch_size=8", "--set", "eval_batch_size=8",
             "--set", "data.workers=0")
    assert r.code == 0, r.stderr
    runs = query(db_path, "SELECT id, status, epochs_done, recipe, dataset, arch, method, config, checkpoint FROM run")
    assert len(runs) == 1
    run_id, status, done, recipe, dataset, arch, method, cfg_json, checkpoint = runs[0]
    assert checkpoint and Path(checkpoint).is_file()
    assert (status, done, recipe, dataset, arch, method) == ("finished", 1, "cifar100-gmix", "cifar100",
                                                             "preactresnet18", "gmix")
    cfg = json.loads(cfg_json)
    assert cfg["mixer"]["alpha"] == 0.5 and cfg["optim"]["lr"] == 0.2 and cfg["epochs"] == 1
    assert cfg["paper_table"] == "hmix-gmix Table 2" and cfg["batch_size"] == 8
    final = dict(query(db_path, "SELECT name, value FROM metric WHERE run_id=? AND kind=? AND epoch IS NULL",
                       run_id, EVAL))
    assert {TOP1, TOP5, NLL, ECE} <= set(final) and 0 <= final[TOP1] <= final[TOP5] <= 100
    losses = query(db_path, "SELECT value FROM metric WHERE run_id=? AND name=?", run_id, TRAIN_LOSS)
    assert len(losses) == 1 and math.isfinite(losses[0][0]) and losses[0][0] > 0
