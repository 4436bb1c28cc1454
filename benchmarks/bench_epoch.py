"""Epoch time of msda's training loop against a hand-written loop doing the same work, per precision setting.

    .venv/bin/python benchmarks/bench_epoch.py [--device cuda] [--images 50000] [--epochs 2] [--batch 128]
                                               [--variants fp32,bf16,bf16-cl,bf16-cl-compile] [--arch preactresnet18]
                                               [--out TABLE.md]

The data set is CIFAR-100-shaped and synthetic (`--images` random uint8 images 3×32×32, 100 classes),
written in the official pickle format so msda reads it as `cifar100` and trains it on its default
device pipeline. Each variant runs in its own process (Accelerate's mixed precision is fixed per
process): first the hand-written loop, then msda's `fit` (vanilla, SGD with Nesterov momentum,
cosine schedule per step, evaluation and a checkpoint after each epoch; its stored epoch time
covers the training pass only, as the hand-written loop's does). The hand-written loop keeps the
uint8 set on the device, pads once, crops and flips each batch by one gather, normalizes, and runs
the same model, loss, optimizer and schedule under `torch.autocast` (bf16), channels_last and
`Module.compile` as the variant says. Variants: fp32, bf16, bf16-cl (+ channels_last),
bf16-cl-compile (+ torch.compile). The first epoch (compilation, warm-up) and the last are shown;
the ratio is hand-written / msda on the last epoch (1.00: msda as fast; target ≥ 0.95). One
markdown table goes to stdout and to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

VARIANTS = {  # name: (precision, channels_last, compile)
    "fp32": ("no", False, False),
    "bf16": ("bf16", False, False),
    "bf16-cl": ("bf16", True, False),
    "bf16-cl-compile": ("bf16", True, True),
}
TARGET = 0.95
TEST_IMAGES = 1000
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def write_cifar100(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Random images and labels in the official `cifar-100-python` layout."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 100, n)
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": labels.tolist(),
                 "coarse_labels": (labels // 5).tolist(), "filenames": [], "batch_label": split}
        with open(folder / split, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class{k}" for k in range(100)],
                     "coarse_label_names": [f"super{k}" for k in range(20)]}, f)


def make_config(args, variant: str, data_dir: str):
    from msda_cli.config import validate

    precision, channels_last, compiled = VARIANTS[variant]
    return validate({
        "dataset": "cifar100", "arch": args.arch, "method": "vanilla", "epochs": args.epochs,
        "batch_size": args.batch, "eval_batch_size": 512, "precision": precision, "channels_last": channels_last,
        "compile": compiled, "checkpoint_every": args.epochs, "threads": args.threads,
        "data": {"root": data_dir, "workers": 0},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
        "schedule": {"name": "cosine"},
    })


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_written(cfg, device: torch.device) -> list[float]:
    """The loop a researcher writes for this setting; the training time of each epoch, in seconds."""
    from msda_cli.data import build_dataset
    from msda_cli.models import build_model

    train = build_dataset("cifar100", root=cfg.data.root, train=True, augment=False)
    x, y = train.base.x.to(device), train.targets.to(device)
    x = F.pad(x, (4, 4, 4, 4))  # once: the zero padding of every random crop
    n, side = len(y), 32
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, num_classes=100).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile()
    mean = torch.tensor(CIFAR100_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR100_STD, device=device).view(1, 3, 1, 1)
    o = cfg.optim
    opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                          nesterov=o.nesterov)
    steps = -(-n // cfg.batch_size)
    total = cfg.epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s / total, 1))))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    ar = torch.arange(side, device=device)
    times = []
    for _ in range(cfg.epochs):
        model.train()
        sync(device)
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=device)
        shifts = torch.randint(0, 9, (n, 2), device=device)
        flips = torch.rand(n, device=device) < 0.5
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            b = len(idx)
            if b == 1:
                continue
            rows = shifts[idx, :1] + ar
            cols = shifts[idx, 1:] + torch.where(flips[idx, None], ar.flip(0), ar)
            flat = (rows[:, :, None] * (side + 8) + cols[:, None, :]).view(b, 1, -1).expand(b, 3, side * side)
            xb = x[idx].view(b, 3, -1).gather(2, flat).view(b, 3, side, side).float().div_(255)
            xb = (xb - mean) / std
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast:
                loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        loss.item()  # waits for the device, as msda's loop does at the end of an epoch
        times.append(time.perf_counter() - t0)
    return times


def msda_fit(cfg, device: torch.device, workdir: Path) -> list[float]:
    """msda's `fit` on this setting; the stored training time of each epoch, in seconds."""
    from accelerate import Accelerator

    from msda_cli.engine.train import fit
    from msda_cli.metric_names import EPOCH_TIME, TRAIN
    from msda_cli.store import Store

    accelerator = Accelerator(mixed_precision=cfg.precision, cpu=device.type == "cpu")
    store = Store(workdir / "bench.db")
    run_id = store.start_run(dataset=cfg.dataset, arch=cfg.arch, method=cfg.method,
                             config=cfg.model_dump_json()).run_id
    store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    fit(cfg, store, run_id, accelerator)
    rows = sorted((m.epoch, m.value) for m in store.metrics(run_id, TRAIN) if m.name == EPOCH_TIME)
    return [value for _, value in rows]


def child(args) -> int:
    """One variant in this process: prints {"hand": [...], "msda": [...]} as one JSON line."""
    from msda_cli import hostmem

    hostmem.keep_freed_memory()  # as the CLI runs
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = make_config(args, args.child, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MSDA_RESULTS"] = tmp
        hand = hand_written(cfg, device)
        ours = msda_fit(cfg, device, Path(tmp))
    print(json.dumps({"hand": hand, "msda": ours}))
    return 0


def table(results: dict, args) -> str:
    last = args.epochs
    lines = [f"Epoch time ({args.arch}, {args.images} CIFAR-100-shaped images, batch {args.batch}, "
             f"device {args.device}, {args.epochs} epochs; ratio = hand-written / msda on epoch {last}, "
             f"target ≥ {TARGET})", "",
             f"| variant | msda epoch 1 s | msda epoch {last} s | hand-written epoch 1 s | hand-written epoch {last} s "
             f"| msda img/s | ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    for variant, r in results.items():
        if "error" in r:
            lines.append(f"| {variant} | failed: {r['error']} | | | | | |")
            continue
        ratio = r["hand"][-1] / r["msda"][-1]
        flag = "" if ratio >= TARGET else " MISSED"
        lines.append(f"| {variant} | {r['msda'][0]:.2f} | {r['msda'][-1]:.2f} | {r['hand'][0]:.2f} | "
                     f"{r['hand'][-1]:.2f} | {args.images / r['msda'][-1]:,.0f} | {ratio:.2f}{flag} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--arch", default="preactresnet18")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = stable timings)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed to all variants together")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        print(f"unknown variant(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(VARIANTS)}",
              file=sys.stderr)
        return 2
    if args.images < 2 or args.epochs < 1 or args.batch < 2 or args.threads < 1:
        print("--images and --batch must be at least 2, --epochs and --threads at least 1", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    results = {}
    deadline = time.monotonic() + args.timeout
    with tempfile.TemporaryDirectory() as data:
        write_cifar100(Path(data), args.images, min(TEST_IMAGES, args.images))
        for variant in variants:
            left = deadline - time.monotonic()
            if left <= 1:
                results[variant] = {"error": f"not run: the {args.timeout:.0f} s of --timeout were spent"}
                continue
            cmd = [sys.executable, __file__, "--child", variant, "--data", data, "--device", args.device,
                   "--images", str(args.images), "--epochs", str(args.epochs), "--batch", str(args.batch),
                   "--arch", args.arch, "--threads", str(args.threads)]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
            except subprocess.TimeoutExpired:
                results[variant] = {"error": f"stopped after {left:.0f} s, the rest of --timeout {args.timeout:.0f} s"}
                continue
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or ["no output"])[-1]
                results[variant] = {"error": f"exit {out.returncode}: {last[:200]}"}
                continue
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    text = table(results, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
