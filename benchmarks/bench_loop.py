"""msda's training loop against a bare hand-written PyTorch loop doing the same work.

Both train the same model on the same data with the same mixer, optimizer, schedule and
number of steps, evaluate on the test split after every epoch and save a checkpoint every
epoch; msda additionally writes its per-epoch metrics and heartbeat to SQLite. Prints
images/s of each and their ratio (target: msda within 5 % of the bare loop).

    python benchmarks/bench_loop.py [--recipe digits-mixup] [--epochs 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from msda_cli.config import apply_set, read_recipe, validate
from msda_cli.engine import build
from msda_cli.metric_names import IMAGES_PER_S, TRAIN
from msda_cli.mixing import soft_cross_entropy
from msda_cli.store import Store
from timing import add_malloc_option, apply_malloc  # benchmarks/timing.py (run from the repository root)


def bare_loop(cfg, workdir: Path) -> float:
    """The loop a researcher would write by hand; returns training images per second."""
    torch.manual_seed(cfg.seed)
    train_set, test_set = build.build_data(cfg, train=True), build.build_data(cfg, train=False)
    # the same batches as msda: every sample each epoch (a last batch of one would be dropped)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True,
                        drop_last=len(train_set) % cfg.batch_size == 1)
    test_loader = DataLoader(test_set, batch_size=cfg.eval_batch_size)
    model = build.build_network(cfg, train_set.info)
    mixer = build.build_method(cfg)
    optimizer = build.build_optimizer(cfg, model)
    scheduler = build.build_scheduler(cfg, optimizer, len(loader))
    generator = torch.Generator().manual_seed(cfg.seed)
    images, train_time = 0, 0.0
    for epoch in range(cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        for x, y in loader:
            out = mixer(x, y, train_set.info.num_classes, generator=generator)
            loss = soft_cross_entropy(model(out.x), out.y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            images += x.shape[0]
        train_time += time.perf_counter() - t0
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(1) == y).sum().item()
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                   workdir / "bare.pt")
    return images / train_time


def msda_loop(cfg, workdir: Path, accelerator) -> float:
    """msda's `fit` (store writes, checkpoints, evaluation included); returns training images/s."""
    from msda_cli.engine.train import fit

    store = Store(workdir / "bench.db")
    run_id = store.start_run(dataset=cfg.dataset, arch=cfg.arch, method=cfg.method, config=cfg.model_dump_json()).run_id
    fit(cfg, store, run_id, accelerator)
    values = {m.name: m.value for m in store.metrics(run_id, TRAIN) if m.epoch is None}
    return values[IMAGES_PER_S]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits-mixup")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="recipe override key=value")
    add_malloc_option(parser)
    args = parser.parse_args()
    memory = apply_malloc(args.malloc)  # both loops run in this process, under the same settings

    from accelerate import Accelerator

    raw = apply_set(read_recipe(args.recipe), [f"epochs={args.epochs}", "data.workers=0", *args.set])
    cfg = validate(raw)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    print(f"recipe {args.recipe}: {cfg.arch} on {cfg.dataset}, method {cfg.method}, batch {cfg.batch_size}, "
          f"{cfg.epochs} epochs, device {accelerator.device}, {torch.get_num_threads()} threads; {memory}")
    bare, ours, bare_wall, ours_wall = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MSDA_RESULTS"] = tmp
        for i in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
            t0 = time.perf_counter()
            bare.append(bare_loop(cfg, Path(tmp)))
            bare_wall.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ours.append(msda_loop(cfg, Path(tmp), accelerator))
            ours_wall.append(time.perf_counter() - t0)
            print(f"  repeat {i + 1}: bare {bare[-1]:8.1f} img/s ({bare_wall[-1]:.2f} s in all)   "
                  f"msda {ours[-1]:8.1f} img/s ({ours_wall[-1]:.2f} s in all)")
    b, o = max(bare), max(ours)
    print(f"best of {args.repeats}: training throughput bare loop {b:.1f} img/s, msda {o:.1f} img/s, "
          f"ratio msda/bare = {o / b:.3f} (target >= 0.95)")
    print(f"best of {args.repeats}: whole run (train + eval + checkpoint [+ SQLite]) bare {min(bare_wall):.2f} s, "
          f"msda {min(ours_wall):.2f} s, ratio bare/msda = {min(bare_wall) / min(ours_wall):.3f}")


if __name__ == "__main__":
    main()
