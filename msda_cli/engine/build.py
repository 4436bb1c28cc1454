"""Turn a validated Config into the objects a run needs: data, model, mixer, optimizer, schedule."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Subset as TorchSubset

from msda_cli.config import Config
from msda_cli.data import LabeledDataset, build_dataset
from msda_cli.data.pipeline import DeviceBatches, held_in_memory
from msda_cli.data.split import holdout, resolve_split_seed
from msda_cli.mixing import Mixer, build_mixer
from msda_cli.mixing.cutout_first import CutoutFirst
from msda_cli.models import FLAT_INPUT, Normalized, build_model, model_options


def build_data(cfg: Config, train: bool, augment: bool | None = None) -> LabeledDataset:
    augment = cfg.data.augment if augment is None else augment
    return build_dataset(cfg.dataset, root=cfg.data.root, train=train, augment=augment and train,
                         download=cfg.data.download, **resolve_split_seed(cfg.data.options, cfg.seed))


def split_training(cfg: Config, train_set: LabeledDataset, subset_indices=None):
    """(the samples trained on, the validation set or None): `data.val_fraction` of the training split held
    out (stratified, seeded by the run's seed) and read as the test set is, without augmentation; a subset
    trains on its samples outside the validation split."""
    keep, val = holdout(train_set.targets, cfg.data.val_fraction, cfg.seed)
    if subset_indices is not None:  # in the subset's own order
        keep = torch.as_tensor(subset_indices, dtype=torch.long)
        keep = keep[~torch.isin(keep, val)]
    if not len(val):
        return (restrict(train_set, keep) if subset_indices is not None else train_set), None
    return restrict(train_set, keep), restrict(build_data(cfg, train=True, augment=False), val)


def restrict(dataset: LabeledDataset, indices) -> LabeledDataset:
    """The same data set restricted to `indices` (a subset from `msda subsample`)."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    return LabeledDataset(TorchSubset(dataset.base, indices.tolist()), dataset.info, dataset.targets[indices])


def build_train_batches(cfg: Config, train_set: LabeledDataset, sampler, batch_size: int, drop_last: bool,
                        device: torch.device, generator: torch.Generator):
    """Each epoch's training batches in `sampler`'s order, crops and flips drawn from `generator`: made
    on `device` for a set held in memory (`data.pipeline: device`), else by a DataLoader of per-sample
    transforms in `data.workers` processes (new ones each epoch, seeded from `generator`)."""
    if cfg.data.pipeline == "device" and held_in_memory(train_set) is not None:
        return DeviceBatches(train_set, sampler, batch_size, drop_last, device, generator)
    return DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=cfg.data.workers, pin_memory=device.type == "cuda", generator=generator,
                      persistent_workers=False, collate_fn=train_set.info.collate)


def build_network(cfg: Config, info) -> Normalized:
    in_chans = info.in_chans
    if cfg.arch in FLAT_INPUT and info.is_image:
        in_chans = info.in_chans * info.image_size**2
    options = dict(cfg.model)
    if info.is_image and "img_size" in model_options(cfg.arch):  # timm's models: the data set's input size
        options.setdefault("img_size", info.image_size)
    net = build_model(cfg.arch, num_classes=info.num_classes, in_chans=in_chans, **options)
    return Normalized(net, info.mean, info.std)


def build_method(cfg: Config) -> Mixer:
    mixer = build_mixer(cfg.method, **cfg.mixer)
    return CutoutFirst(mixer, cfg.data.cutout) if cfg.data.cutout else mixer


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    # Weight decay on every parameter, as the papers' reference code does.
    o, params = cfg.optim, [p for p in model.parameters() if p.requires_grad]
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)
    # adam adds weight_decay·w to the gradient (L2); adamw decays the weights apart from it (Loshchilov & Hutter)
    opt = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
    return opt(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)


def build_ema(cfg: Config, model: torch.nn.Module, device):
    """timm's ModelEmaV3 of `model` with decay `cfg.ema` (None when 0): every floating-point entry of the state
    dict, BatchNorm statistics included, is averaged, integer buffers copied, as timm does."""
    if not cfg.ema:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=cfg.ema, device=device)


def lr_factor(cfg: Config, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr at optimizer step `step`: linear warm-up, then the schedule."""
    s = cfg.schedule
    epoch = step / steps_per_epoch
    if s.warmup_epochs and epoch < s.warmup_epochs:
        return (step + 1) / (s.warmup_epochs * steps_per_epoch)
    if s.name == "constant":
        return 1.0
    if s.name == "step":
        return s.gamma ** sum(epoch >= m for m in s.milestones)
    progress = (epoch - s.warmup_epochs) / max(cfg.epochs - s.warmup_epochs, 1e-8)
    floor = s.min_lr / cfg.optim.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def build_scheduler(cfg: Config, optimizer, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch))
