"""The training loop, on Hugging Face Accelerate: one process or many, CPU or GPU.

Read top to bottom: `train_one_epoch`, then `fit`, which builds everything from the config,
resumes from the run's checkpoint if there is one, and after each epoch evaluates, saves a
checkpoint and writes that epoch's metrics (the only database writes besides the lease's
heartbeat, a thread, once a minute). Every epoch re-seeds its RNGs from (seed, epoch, rank), so a run resumed
from the checkpoint of epoch k trains epochs k+1.. exactly as the uninterrupted run did.

An epoch's checkpoint and its rows are one recoverable unit: the checkpoint also holds every
epoch's rows so far, and a resumed run first makes the store agree with it (`reconcile`); the
final rows and the finish are one transaction. A kill at any moment loses and doubles nothing.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, DistributedSampler

from msda_cli import __version__
from msda_cli.config import Config
from msda_cli.engine import build
from msda_cli.engine.checkpoint import BEST_NAME, best_so_far
from msda_cli.engine.checkpoint import (CHECKPOINT_NAME, RESUME_KEYS, load_checkpoint, rng_state, save_checkpoint,
                                        temp_path)
from msda_cli.errors import RunFailed
from msda_cli.evaluation import evaluate
from msda_cli.faults import declare, fault_point
from msda_cli.store.progress import ProgressFile
from msda_cli.metric_names import (EPOCH_TIME, EVAL, IMAGES_PER_S, LR, NLL, RAW_TOP1, TEST_LOSS, TEST_TOP1, TEST_TOP5,
                                   TOP1, TOP5, TRAIN, TRAIN_LOSS, TRAIN_TIME, VAL_LOSS, VAL_TOP1)

declare("train.reconciled", "train.epoch_recorded", "train.before_finish")


class LossDiverged(RunFailed):
    """The training loss became NaN or infinite: the run is failed, its last epoch's rows stored."""


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one process, in [0, 2**32): the range NumPy's global seed takes."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % 2**32


def data_seed(seed: int) -> int:
    """The data stream's seed (crops, flips, loader workers) beside the mixer's `seed`: two torch generators
    seeded alike would draw the same words, tying each batch's mixing to its augmentation."""
    return seed ^ 0x9E3779B9


# The sampler shuffles with seed + epoch: spread the runs' seeds so seed s at epoch e + 1 is not seed s + 1 at e.
SAMPLER_SEED_STRIDE = 1_000_003


def train_one_epoch(model, mixer, loader, optimizer, scheduler, accelerator, num_classes: int,
                    generator: torch.Generator, grad_clip: float | None = None, channels_last: bool = False,
                    on_step=None, ema=None) -> dict[str, float]:
    """One pass over `loader`. Loss is accumulated on the device: no host sync per step. `ema` (timm's
    ModelEmaV3, or None) averages the weights after every optimizer step."""
    model.train()
    device = accelerator.device
    loss_sum = torch.zeros((), device=device)
    seen = 0
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            out = mixer.loss(model, x, y, num_classes, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(out.loss)
        if grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(accelerator.unwrap_model(model))
        value = out.value if out.value is not None else out.loss
        loss_sum += value.detach().float() * y.shape[0]  # y: a graph batch has no shape
        seen += y.shape[0]
        if on_step is not None:
            on_step()
    totals = torch.stack([loss_sum, torch.tensor(float(seen), device=device)])
    if accelerator.num_processes > 1:
        totals = accelerator.reduce(totals, reduction="sum")
    loss_total, images = totals.tolist()
    return {"train_loss": loss_total / max(images, 1), "images": int(images)}


def fit(cfg: Config, store, run_id: str | None, accelerator, resume: bool = False,
        subset_indices=None, progress=None) -> str:
    """Train `cfg` to the end and return the run id. The main process writes the database; all
    processes train.

    `run_id` is the run row the main process created (None on other ranks; it is broadcast).
    """
    from accelerate.utils import broadcast_object_list

    rank, world = accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process
    run_dir = str(store.run_dir(run_id)) if main else None
    if world > 1:
        run_id, run_dir = broadcast_object_list([run_id, run_dir])
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME
    best_path = run_dir / BEST_NAME  # checkpoint_keep best|both: the model of the best epoch so far

    # ---- data, model, method, optimizer ------------------------------------------------
    torch.set_num_threads(cfg.threads)  # the cores this run is given (config.cores_given), recorded in its config
    set_seed(cfg.seed)  # Python, NumPy, torch and every CUDA device
    train_set, val_set = build.split_training(cfg, build.build_data(cfg, train=True), subset_indices)
    test_set = build.build_data(cfg, train=False)
    info = train_set.info
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True,
                                 seed=cfg.seed * SAMPLER_SEED_STRIDE)
    per_process_batch = max(cfg.batch_size // world, 1)
    # Every sample is seen each epoch, as in the papers' code; only a last batch of one sample
    # is dropped (BatchNorm cannot train on it).
    drop_last = len(sampler) % per_process_batch == 1
    pin = accelerator.device.type == "cuda"
    workers = cfg.data.workers
    loader_gen = torch.Generator()  # the crops and flips: re-seeded every epoch
    train_loader = build.build_train_batches(cfg, train_set, sampler, per_process_batch, drop_last,
                                             accelerator.device, loader_gen)
    test_loader, val_loader = (DataLoader(held, batch_size=cfg.eval_batch_size, shuffle=False, num_workers=workers,
                                          pin_memory=pin, collate_fn=held.info.collate)
                               if held is not None else None for held in (test_set, val_set))

    model = build.build_network(cfg, info)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile()  # in place: compiled at its first call, its state dict keeps its keys
    mixer = build.build_method(cfg)
    optimizer = build.build_optimizer(cfg, model)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        from msda_cli.errors import MsdaError

        raise MsdaError(f"batch size {cfg.batch_size} exceeds the {len(train_set)} training samples")
    scheduler = build.build_scheduler(cfg, optimizer, steps_per_epoch)

    start_epoch, train_time, images = 0, 0.0, 0
    history: list[tuple] = []  # every epoch's rows (name, value, epoch) so far: saved in each checkpoint
    if main:
        for kept in (ckpt_path, best_path):  # left by a kill between the write and the rename
            temp_path(kept).unlink(missing_ok=True)
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, keys=RESUME_KEYS)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
        history = [tuple(row) for row in state.get("history", [])]
        train_time, images = float(state.get("train_time_s", 0.0)), int(state.get("images", 0))
    ema = build.build_ema(cfg, model, accelerator.device)  # after the resumed weights: a copy of them, then its own
    if ema is not None and resume and ckpt_path.is_file():
        ema.module.load_state_dict(state["ema"])
    model, optimizer = accelerator.prepare(model, optimizer)
    test_loader = accelerator.prepare(test_loader)
    val_loader = accelerator.prepare(val_loader) if val_loader is not None else None
    if main:
        reconcile(store, run_id, history, start_epoch, ckpt_path)
        fault_point("train.reconciled")

    # ---- epochs ------------------------------------------------------------------------
    generator = torch.Generator()
    lease = store.leases[run_id] if main else None  # renewed by its heartbeat thread, never per step
    task = progress.add_task(f"run {run_id}", total=cfg.epochs * steps_per_epoch, epochs=cfg.epochs,
                             completed=start_epoch * steps_per_epoch) if progress and main else None
    live = ProgressFile(run_dir, start_epoch, cfg.epochs, steps_per_epoch) if main else None  # runs list: step, ETA

    def on_step():
        if task is not None:
            progress.advance(task)
        if live is not None:
            live.tick()
        if lease is not None:
            lease.check()  # the heartbeat found the run deleted or taken over: stop within the epoch

    metrics: dict = {}
    final: list[tuple] = []  # the final eval rows of the last epoch trained: test metrics, then validation ones
    best, best_rows = best_so_far(best_path) if main and resume and cfg.checkpoint_keep != "last" else (-math.inf, [])
    for epoch in range(start_epoch, cfg.epochs):
        seed = epoch_seed(cfg.seed, epoch, rank)
        set_seed(seed)
        generator.manual_seed(seed)
        loader_gen.manual_seed(data_seed(seed))
        sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        stats = train_one_epoch(model, mixer, train_loader, optimizer, scheduler, accelerator,
                                info.num_classes, generator, cfg.grad_clip, cfg.channels_last, on_step, ema)
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time
        images += stats["images"]
        metrics, final = evaluated(model, test_loader, val_loader, accelerator, ema)
        rows = [(TRAIN_LOSS, float(stats["train_loss"])), (LR, float(lr)), (TEST_TOP1, float(metrics[TOP1])),
                (EPOCH_TIME, epoch_time), (TEST_TOP5, float(metrics[TOP5])), (TEST_LOSS, float(metrics[NLL]))]
        if val_loader is not None:
            rows += [(VAL_TOP1, dict(final)[VAL_TOP1]), (VAL_LOSS, dict(final)[VAL_LOSS])]
        if ema is not None:
            rows.append((RAW_TOP1, dict(final)[RAW_TOP1]))
        score = dict(final).get(VAL_TOP1, float(metrics[TOP1]))  # the best epoch: by validation top-1 where held out
        history += [(name, value, epoch) for name, value in rows]
        last = epoch == cfg.epochs - 1
        saved = main and ((epoch + 1) % cfg.checkpoint_every == 0 or last)
        # best.pt before checkpoint.pt: a kill between them retrains this epoch and finds best.pt up to date
        if main and cfg.checkpoint_keep != "last" and score > best:
            best, best_rows = score, final
            save_checkpoint(best_path, {"model": accelerator.unwrap_model(model).state_dict(), "epoch": epoch,
                                        **({"ema": ema.module.state_dict()} if ema is not None else {}),
                                        "config": json.loads(cfg.model_dump_json()), "msda_version": __version__,
                                        "test_top1": float(metrics[TOP1]), "score": best, "metrics": final})
        if saved:  # the epoch's rows go into the checkpoint too: a kill before they are stored loses nothing
            save_checkpoint(ckpt_path, {
                "model": accelerator.unwrap_model(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                **({"ema": ema.module.state_dict()} if ema is not None else {}),
                "epoch": epoch,
                "rng": rng_state(),
                "config": json.loads(cfg.model_dump_json()),
                "msda_version": __version__,
                "history": history,
                "train_time_s": train_time,
                "images": images,
            })
        if main:
            store.record_epoch(run_id, epoch, TRAIN, rows, epochs_done=epoch + 1,
                               **({"checkpoint": str(ckpt_path)} if saved else {}))
            fault_point("train.epoch_recorded")
            stamp, said = time.strftime('%Y-%m-%d %H:%M:%S'), (
                f"epoch {epoch + 1}/{cfg.epochs}: loss {stats['train_loss']:.4f} lr {lr:.4g} "
                f"test top-1 {metrics[TOP1]:.2f}% ({epoch_time:.1f} s)")
            with open(run_dir / "log.txt", "a") as log:
                log.write(f"{stamp} run {run_id} {said}\n")
            if progress is not None:  # the screen names the run as the --jobs view does
                progress.console.print(f"{stamp} {progress.name(task)} (run {run_id}) {said}", markup=False,
                                       highlight=False)
                progress.update(task, loss=float(stats["train_loss"]), top1=float(metrics[TOP1]))
        if not math.isfinite(stats["train_loss"]):  # on every process: the loss is reduced over all of them
            raise LossDiverged(f"run {run_id} failed: the training loss diverged to {stats['train_loss']} in epoch "
                               f"{epoch + 1} (its metrics are stored as they are); lower optim.lr or set grad_clip")
    if task is not None:  # the run's bar goes; its epochs' lines stay
        progress.remove_task(task)
    if not metrics:  # resumed after the last checkpoint of a run that died before finishing
        metrics, final = evaluated(model, test_loader, val_loader, accelerator, ema)
    accelerator.wait_for_everyone()
    if main:
        # checkpoint_keep best: the run is its best epoch's model from now on, and its final rows are that epoch's
        rows = {EVAL: best_rows if cfg.checkpoint_keep == "best" and best_rows else final}
        if train_time > 0:
            rows[TRAIN] = [(TRAIN_TIME, train_time), (IMAGES_PER_S, images / train_time)]
        fault_point("train.before_finish")
        store.finish_run(run_id, rows)  # one transaction: a kill stores both or neither
        if cfg.checkpoint_keep == "best":  # the best epoch's model is the run's from now on (eval, robust, analyze)
            ckpt_path.unlink(missing_ok=True)
    return run_id


def evaluated(model, test_loader, val_loader, accelerator, ema=None) -> tuple[dict[str, float], list[tuple]]:
    """The test metrics and the final eval rows (test metrics, then val_top1 and val_loss where held out) of the
    run's model: its EMA where it has one (then raw_top1 too, the trained weights' test top-1)."""
    measured = ema.module if ema is not None else model
    metrics = evaluate(measured, test_loader, accelerator)
    rows = [(name, float(value)) for name, value in metrics.items()]
    if val_loader is not None:
        val = evaluate(measured, val_loader, accelerator)
        rows += [(VAL_TOP1, float(val[TOP1])), (VAL_LOSS, float(val[NLL]))]
    if ema is not None:
        rows.append((RAW_TOP1, float(evaluate(model, test_loader, accelerator)[TOP1])))
    return metrics, rows


def reconcile(store, run_id: str, history: list[tuple], start_epoch: int, ckpt_path: Path) -> None:
    """Make the store agree with the checkpoint file, the truth after a kill: rows of the epochs after
    it go (they are trained again), rows of its epochs that a kill lost come back from it, and the
    run's `epochs_done` and `checkpoint` are the file's. Every step can be repeated after another kill."""
    store.discard_epochs_from(run_id, start_epoch)
    stored = {(m.name, m.epoch) for m in store.metrics(run_id, TRAIN) if m.epoch is not None}
    by_epoch: dict[int, list[tuple]] = {}
    for name, value, epoch in history:
        by_epoch.setdefault(epoch, []).append((name, value))
    for epoch, rows in sorted(by_epoch.items()):
        if any((name, epoch) not in stored for name, _ in rows):
            store.record_epoch(run_id, epoch, TRAIN, rows)
    store.update_run(run_id, epochs_done=start_epoch, checkpoint=str(ckpt_path) if start_epoch else None)
