"""The device pipeline (msda_cli/data/pipeline.py): the per-sample path's crops and flips, made on whole
batches; every sample once per epoch in the sampler's order; deterministic; the default for sets held in
memory; kill/resume bit-identical. Also the run's threads and `compile: true`."""

from __future__ import annotations

import json

import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.transforms.v2 import functional as TF

from conftest import assert_resume_matches_straight, interrupt_in_epoch, query
from msda_cli.config import read_recipe, validate
from msda_cli.data import DatasetInfo, LabeledDataset, TensorDataset, build_dataset
from msda_cli.data.pipeline import DeviceBatches, crop_flip, held_in_memory
from msda_cli.data.transforms import SmallImage
from msda_cli.engine import build
from msda_cli.metric_names import EVAL, TOP1
from test_data import pattern_images, write_cifar10, write_class_folders, write_idx, write_svhn

SIDE, PAD = 32, 4


def in_memory_set(x: torch.Tensor, transform=None, y=None) -> LabeledDataset:
    y = torch.arange(len(x)) % 10 if y is None else y
    info = DatasetInfo(name="test", num_classes=10, in_chans=x.shape[1], image_size=x.shape[-1], mean=(0.5,),
                       std=(0.25,))
    return LabeledDataset(TensorDataset(x, y, transform), info, y)


def position_images(n: int, side: int = SIDE) -> torch.Tensor:
    """uint8 [n, 3, side, side]: channel 0 holds row + 1, channel 1 column + 1 (0 is the padding)."""
    rows = torch.arange(1, side + 1).view(side, 1).expand(side, side)
    x = torch.zeros(n, 3, side, side, dtype=torch.uint8)
    x[:, 0], x[:, 1] = rows, rows.t()
    return x


def crops_and_flips(out: torch.Tensor, pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top, left, flipped) of each float crop of `position_images`, read off its centre pixels."""
    v = (out * 255).round().long()
    side, c = out.shape[-1], out.shape[-1] // 2
    top = v[:, 0, c, c] - 1 - c + pad
    flipped = v[:, 1, c, c + 1] < v[:, 1, c, c]
    left = torch.where(flipped, v[:, 1, c, c] - 1 - (side - 1 - c), v[:, 1, c, c] - 1 - c) + pad
    return top, left, flipped


def epoch_batches(dataset, batch=64, seed=0, world=1, rank=0, epoch=0, device="cpu"):
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    g = torch.Generator().manual_seed(seed)
    drop_last = len(sampler) % batch == 1
    return list(DeviceBatches(dataset, sampler, batch, drop_last, torch.device(device), g)), sampler


# ----- distribution: the per-sample path's ------------------------------------------------


def assert_uniform_crops_and_fair_flips(top, left, flipped, pad=PAD):
    positions = 2 * pad + 1
    for offsets in (top, left):
        assert offsets.min() >= 0 and offsets.max() <= 2 * pad
        counts = torch.bincount(offsets, minlength=positions)
        assert len(counts) == positions and stats.chisquare(counts.numpy()).pvalue > 1e-3, counts.tolist()
    assert stats.binomtest(int(flipped.sum()), len(flipped), 0.5).pvalue > 1e-3
    # top and left independent: chi-square on the 9x9 table of joint positions
    joint = torch.bincount(top * positions + left, minlength=positions**2).view(positions, positions)
    assert stats.chi2_contingency(joint.numpy()).pvalue > 1e-3


def test_device_crops_are_uniform_over_the_padded_positions_and_flip_half():
    n = 4000
    batches, _ = epoch_batches(in_memory_set(position_images(n), SmallImage(True, SIDE, PAD, True)), batch=128)
    out = torch.cat([x for x, _ in batches])
    assert out.shape == (n, 3, SIDE, SIDE) and out.dtype == torch.float32
    assert_uniform_crops_and_fair_flips(*crops_and_flips(out))


def test_the_per_sample_path_has_that_same_distribution():
    torch.manual_seed(0)
    transform, images = SmallImage(True, SIDE, PAD, True), position_images(1)
    out = torch.stack([transform(images[0]) for _ in range(3000)])
    assert_uniform_crops_and_fair_flips(*crops_and_flips(out))


def test_no_flip_for_sets_that_do_not_flip_and_mnist_padding_2():
    batches, _ = epoch_batches(in_memory_set(position_images(2000, 28), SmallImage(True, 28, 2, False)))
    top, left, flipped = crops_and_flips(torch.cat([x for x, _ in batches]), pad=2)
    assert not flipped.any() and top.max() == 4 and left.max() == 4 and top.min() == 0
    assert stats.chisquare(torch.bincount(top, minlength=5).numpy()).pvalue > 1e-3


def test_a_crop_equals_torchvisions_pad_crop_flip_and_scaling():
    x = torch.from_numpy(pattern_images(6, 3, SIDE, SIDE))
    offsets = torch.tensor([[0, 0], [8, 8], [0, 8], [8, 0], [3, 5], [4, 4]])
    flips = torch.tensor([False, True, True, False, True, False])
    out = crop_flip(x, offsets, flips, PAD, SIDE).to(torch.float32).mul_(1 / 255)
    for i in range(len(x)):
        ref = TF.crop(TF.pad(x[i], [PAD] * 4), int(offsets[i, 0]), int(offsets[i, 1]), SIDE, SIDE)
        ref = TF.to_dtype(TF.horizontal_flip(ref) if flips[i] else ref, torch.float32, scale=True)
        assert torch.equal(out[i], ref), i  # bit for bit: the same values as the per-sample path


def test_without_augmentation_the_samples_are_the_per_sample_paths():
    x = torch.from_numpy(pattern_images(20, 3, SIDE, SIDE))
    plain = in_memory_set(x, SmallImage(False, SIDE))
    (batch, labels), = epoch_batches(plain, batch=20)[0]
    sampler_order = list(epoch_batches(plain, batch=20)[1])
    assert torch.equal(batch, torch.stack([plain[i][0] for i in sampler_order]))
    assert labels.tolist() == [plain[i][1] for i in sampler_order]
    floats = in_memory_set(torch.rand(9, 1, 8, 8))  # digits: float tensors, no transform, fed as they are
    (batch, _), = epoch_batches(floats, batch=9)[0]
    assert sorted(batch.sum((1, 2, 3)).tolist()) == sorted(floats.base.x.sum((1, 2, 3)).tolist())


# ----- order, partition, last batch, subsets, determinism ---------------------------------


def test_every_sample_once_per_epoch_in_the_samplers_order_and_the_loaders_labels():
    data = in_memory_set(torch.from_numpy(pattern_images(150, 3, SIDE, SIDE)), SmallImage(True, SIDE),
                         y=torch.arange(150))
    batches, sampler = epoch_batches(data, batch=32, epoch=3)
    assert [len(y) for _, y in batches] == [32, 32, 32, 32, 22]
    assert torch.cat([y for _, y in batches]).tolist() == list(sampler)  # the order a DataLoader gives
    loader = DataLoader(data, batch_size=32, sampler=sampler)
    assert [y.tolist() for _, y in loader] == [y.tolist() for _, y in batches]
    assert sorted(list(sampler)) == list(range(150))


def test_two_ranks_split_the_epoch_as_distributed_sampler_does():
    data = in_memory_set(torch.from_numpy(pattern_images(101, 3, 8, 8)), SmallImage(True, 8, 2), y=torch.arange(101))
    seen = []
    for rank in (0, 1):
        batches, sampler = epoch_batches(data, batch=16, world=2, rank=rank, epoch=1)
        labels = torch.cat([y for _, y in batches]).tolist()
        assert labels == list(sampler)
        seen += labels
    assert sorted(set(seen)) == list(range(101)) and len(seen) == 102  # padded to an even split, as the sampler


def test_a_last_batch_of_one_sample_is_dropped():
    data = in_memory_set(torch.from_numpy(pattern_images(65, 3, 8, 8)), SmallImage(True, 8, 2))
    batches, _ = epoch_batches(data, batch=32)
    assert [len(y) for _, y in batches] == [32, 32]
    sampler = DistributedSampler(data, num_replicas=1, rank=0)
    assert len(DeviceBatches(data, sampler, 32, True, torch.device("cpu"), torch.Generator())) == 2
    assert len(DeviceBatches(data, sampler, 32, False, torch.device("cpu"), torch.Generator())) == 3


def test_a_subset_feeds_only_its_samples_each_once(tmp_path):
    write_cifar10(tmp_path, per_batch=6, n_test=2)
    full = build_dataset("cifar10", root=tmp_path, train=True)
    keep = [3, 7, 11, 12, 20, 29]
    sub = build.restrict(full, keep)
    samples, indices = held_in_memory(sub)
    assert indices.tolist() == keep and samples is full.base
    (x, y), = epoch_batches(sub, batch=8)[0]
    assert sorted(y.tolist()) == sorted(full.targets[keep].tolist())
    plain = build.restrict(build_dataset("cifar10", root=tmp_path, train=True, augment=False), keep)
    (x, _), = epoch_batches(plain, batch=8)[0]
    sampler_order = list(epoch_batches(plain, batch=8)[1])
    assert torch.equal(x, torch.stack([plain[i][0] for i in sampler_order]))
    nested = build.restrict(sub, [5, 0])
    assert held_in_memory(nested)[1].tolist() == [29, 3]


def test_batches_are_deterministic_under_a_seed_and_change_with_it():
    data = in_memory_set(torch.from_numpy(pattern_images(40, 3, SIDE, SIDE)), SmallImage(True, SIDE))
    a, b = (torch.cat([x for x, _ in epoch_batches(data, seed=5)[0]]) for _ in range(2))
    other = torch.cat([x for x, _ in epoch_batches(data, seed=6)[0]])
    later = torch.cat([x for x, _ in epoch_batches(data, seed=5, epoch=1)[0]])
    assert torch.equal(a, b) and not torch.equal(a, other) and not torch.equal(a, later)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda_the_batches_equal_the_cpus():
    data = in_memory_set(torch.from_numpy(pattern_images(70, 3, SIDE, SIDE)), SmallImage(True, SIDE))
    on_cpu, _ = epoch_batches(data, batch=32)
    on_gpu, _ = epoch_batches(data, batch=32, device="cuda")
    assert all(xg.is_cuda and torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())
               for (xc, yc), (xg, yg) in zip(on_cpu, on_gpu))


# ----- which sets, which path ------------------------------------------------------------


def test_sets_held_in_memory_take_the_device_path_image_files_the_loader(tmp_path):
    write_cifar10(tmp_path / "c10")
    write_svhn(tmp_path / "svhn", "train", 4)
    for prefix in ("train", "t10k"):  # torchvision's reader wants both splits
        write_idx(tmp_path / "mnist" / "MNIST" / "raw", prefix, 5)
    write_class_folders(tmp_path / "folder" / "train", ["a", "b"])
    held = [build_dataset("cifar10", root=tmp_path / "c10"), build_dataset("svhn", root=tmp_path / "svhn"),
            build_dataset("mnist", root=tmp_path / "mnist"), build_dataset("digits"), build_dataset("iris")]
    assert all(held_in_memory(d) is not None for d in held)
    assert held_in_memory(build_dataset("imagefolder", root=tmp_path / "folder")) is None
    sampler = DistributedSampler(held[0], num_replicas=1, rank=0)

    def batches(dataset, **data):
        cfg = validate({**read_recipe("digits-vanilla"), "data": {"workers": 0, **data}})
        return build.build_train_batches(cfg, dataset, sampler, 4, False, torch.device("cpu"), torch.Generator())

    assert isinstance(batches(held[0]), DeviceBatches)  # the default
    assert isinstance(batches(held[0], pipeline="loader"), DataLoader)
    folder = build_dataset("imagefolder", root=tmp_path / "folder")
    assert isinstance(batches(folder), DataLoader)


def test_an_unknown_pipeline_is_one_line_exit_2(msda, db_path):
    r = msda("train", "--recipe", "digits-vanilla", "--set", "data.pipeline=gpu")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "data.pipeline" in r.stderr
    assert not db_path.exists() or query(db_path, "SELECT count(*) FROM run") == [(0,)]


def test_digits_trains_alike_on_both_paths(msda, db_path):
    """No augmentation and the same sampler: the device path feeds the loader's batches, bit for bit."""
    args = ["train", "--recipe", "digits-mixup", "--epochs", "2", "--set", "data.options.image_size=8"]
    assert msda(*args).code == 0
    assert msda(*args, "--set", "data.pipeline=loader").code == 0
    ckpts = [c for (c,) in query(db_path, "SELECT checkpoint FROM run ORDER BY created_at")]
    a, b = (torch.load(c, weights_only=True)["model"] for c in ckpts)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----- kill / resume ---------------------------------------------------------------------


def test_resume_on_the_device_pipeline_matches_uninterrupted(tmp_path, msda, db_path, monkeypatch):

    write_cifar10(tmp_path / "c10", per_batch=24, n_test=20)
    args = ["train", "--recipe", "digits-vanilla", "--set", "dataset=cifar10", "--set", "data.options={}",
            "--set", "batch_size=16", "--epochs", "3", "--data-dir", tmp_path / "c10"]
    made, real_batches = [], build.build_train_batches
    monkeypatch.setattr(build, "build_train_batches", lambda *a, **k: made.append(real_batches(*a, **k)) or made[-1])
    assert msda(*args).code == 0
    assert isinstance(made[-1], DeviceBatches) and made[-1].transform.train  # augmented, on the device

    interrupt_in_epoch(monkeypatch, msda, args)
    assert_resume_matches_straight(msda, db_path, epochs=3)


# ----- threads ---------------------------------------------------------------------------


def test_threads_follow_the_cores_given_and_are_recorded(msda, db_path, monkeypatch):
    import os

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert validate(read_recipe("digits-vanilla")).threads == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert validate(read_recipe("digits-vanilla")).threads == len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        seen = []
        monkeypatch.setattr("msda_cli.engine.train.train_one_epoch",
                            lambda *a, **k: seen.append(torch.get_num_threads()) or {"train_loss": 1.0, "images": 1})
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert msda("train", "--recipe", "digits-vanilla", "--epochs", "1").code == 0
        assert msda("train", "--recipe", "digits-vanilla", "--epochs", "1", "--set", "threads=2").code == 0
        assert seen == [1, 2]
        stored = [json.loads(c)["threads"] for (c,) in query(db_path, "SELECT config FROM run ORDER BY created_at")]
        assert stored == [1, 2]
    finally:
        torch.set_num_threads(before)
    assert msda("train", "--recipe", "digits-vanilla", "--set", "threads=0").code == 2


def test_a_config_stored_without_the_new_keys_still_validates():
    cfg = json.loads(validate(read_recipe("digits-vanilla")).model_dump_json())
    for key in ("threads", "compile"):
        cfg.pop(key)
    cfg["data"].pop("pipeline")
    old = validate(cfg)
    assert old.threads >= 1 and old.compile is False and old.data.pipeline == "device"


def test_threads_compile_and_pipeline_do_not_split_a_setting_in_reports():
    from msda_cli.report.settings import setting

    base = json.loads(validate(read_recipe("digits-vanilla")).model_dump_json())
    other = json.loads(json.dumps(base))
    other.update(threads=base["threads"] + 3, compile=True)
    other["data"]["pipeline"] = "loader"
    assert setting(base) == setting(other)
    assert setting(base) != setting({**base, "epochs": base["epochs"] + 1})  # a real setting still counts


# ----- compile ---------------------------------------------------------------------------


def _compile_works() -> str:
    """'' when torch.compile can build and run a graph on this machine, else why not."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(2))
        return ""
    except Exception as e:  # no C++ compiler, an unsupported Python ...
        return f"torch.compile does not work here: {type(e).__name__}: {str(e).splitlines()[0][:200]}"


@pytest.mark.slow
def test_a_compiled_digits_run_trains_and_resumes(msda, db_path, monkeypatch):
    why = _compile_works()
    if why:
        pytest.skip(why)

    compiled = []
    real_compile = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(1) or real_compile(self))
    args = ["train", "--recipe", "digits-vanilla", "--epochs", "2", "--set", "compile=true",
            "--set", "data.options.image_size=8", "--set", "batch_size=256"]
    interrupt_in_epoch(monkeypatch, msda, args)
    (run_id, config), = query(db_path, "SELECT id, config FROM run")
    assert json.loads(config)["compile"] is True and compiled == [1]
    assert msda("train", "--resume", run_id).code == 0
    assert query(db_path, "SELECT status, epochs_done FROM run") == [("finished", 2)]
    assert compiled == [1, 1]
    state = torch.load(query(db_path, "SELECT checkpoint FROM run")[0][0], weights_only=True)["model"]
    assert not any(k.startswith("_orig_mod") for k in state)  # compiled in place: the eager model's keys
    (top1,), = query(db_path, "SELECT value FROM metric WHERE kind=? AND name=?", EVAL, TOP1)
    assert top1 > 20  # it learned (10 classes: chance is 10 %)
