"""Training images per second delivered on the device: msda's device pipeline against its DataLoader path.

    .venv/bin/python benchmarks/bench_data.py [--images 50000] [--batch 128] [--repeats 3] [--device cpu|cuda]
                                              [--workers 0,2] [--threads N] [--malloc msda|default]

Both feed the same CIFAR-shaped set held in memory (`--images` uint8 images 3×32×32, 100 classes) with
the CIFAR augmentation (4 px zero padding, random crop 32, horizontal flip), through the builder
training uses (`engine.build.build_train_batches`): `data.pipeline: device` (the set on the device,
whole batches cropped and flipped there) and `data.pipeline: loader` with 0 and 2 workers (per-sample
transforms, collated, then copied to the device as the loop does, pinned on CUDA). One measurement is
a whole epoch, as a run sees it (the loader's workers start anew every epoch); the paths alternate
over `--repeats` rounds and each one's median is printed. Baseline: the better DataLoader figure
(target on a 2-core CPU: the device pipeline ≥ 5× it).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from torch.utils.data import DistributedSampler

from msda_cli.config import validate
from msda_cli.data import DatasetInfo, LabeledDataset, TensorDataset
from msda_cli.data.transforms import SmallImage
from msda_cli.engine.build import build_train_batches
from timing import add_malloc_option, apply_malloc, timed  # benchmarks/timing.py (run from the repository root)

TARGET = 5.0
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def cifar_shaped(n: int, seed: int = 0) -> LabeledDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 100, (n,), generator=g)
    info = DatasetInfo(name="cifar-shaped", num_classes=100, in_chans=3, image_size=32, mean=CIFAR100_MEAN,
                       std=CIFAR100_STD)
    return LabeledDataset(TensorDataset(x, y, SmallImage(True, 32, padding=4, flip=True)), info, y)


def epoch_images_per_s(batches, sampler, generator, device: torch.device, epoch: int) -> float:
    """One epoch of `batches`, each batch on `device` (as the training loop moves it); images/s."""
    sampler.set_epoch(epoch)
    generator.manual_seed(epoch)

    def run() -> int:
        n = 0
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            n += len(y)
        return n

    wall, _, n = timed(run, device)
    return n / wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="epochs per path (median)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts to time")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = stable timings)")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    if args.images < 2 or args.batch < 1 or args.repeats < 1 or args.threads < 1:
        print("--images must be at least 2, --batch, --repeats and --threads at least 1", file=sys.stderr)
        return 2
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        workers = [-1]
    if any(w < 0 for w in workers):
        print(f"--workers must be comma-separated counts >= 0, got {args.workers!r}", file=sys.stderr)
        return 2
    memory = apply_malloc(args.malloc)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = cifar_shaped(args.images)
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
    drop_last = len(sampler) % args.batch == 1
    generator = torch.Generator()
    paths = {"device pipeline": {"pipeline": "device"}}
    paths.update({f"DataLoader, {w} worker{'s' if w != 1 else ''}": {"pipeline": "loader", "workers": w}
                  for w in workers})
    feeds = {}
    for name, data_cfg in paths.items():
        cfg = validate({"dataset": "cifar100", "arch": "preactresnet18", "epochs": 1, "data": data_cfg})
        feeds[name] = build_train_batches(cfg, data, sampler, args.batch, drop_last, device, generator)
    figures = {name: [] for name in feeds}
    names = list(feeds)
    for r in range(args.repeats):  # alternating order, so drifts in machine load hit every path alike
        for name in (names if r % 2 == 0 else reversed(names)):
            figures[name].append(epoch_images_per_s(feeds[name], sampler, generator, device, r))
    print(f"{args.images} CIFAR-shaped uint8 images in memory, batch {args.batch}, pad 4 + crop 32 + flip, "
          f"delivered on {device.type}; {args.threads} torch thread(s); {args.repeats} epoch(s) per path (medians); "
          f"{memory}")
    med = {name: statistics.median(v) for name, v in figures.items()}
    for name in names:
        print(f"{name:<24}{med[name]:12,.0f} images/s")
    loaders = [n for n in names if n.startswith("DataLoader")]
    if loaders:
        baseline = max(loaders, key=med.get)
        ratio = med["device pipeline"] / med[baseline]
        flag = "" if ratio >= TARGET else "  MISSED"
        print(f"ratio device pipeline / {baseline} (the better DataLoader): {ratio:.1f}× "
              f"(target ≥ {TARGET:.0f}×){flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
