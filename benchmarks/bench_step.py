"""Cost of mixing per training step: every method's full step against `vanilla`'s, in one process.

    .venv/bin/python benchmarks/bench_step.py [--arch preactresnet18|digits-cnn] [--batch 128] [--reps 5]
                                              [--device cpu|cuda] [--threads 1] [--size 32] [--methods a,b]
                                              [--malloc msda|default]

A step is what the training loop does per batch: `mixer.loss` (mix, forward, soft cross-entropy; MixupE's
batched clean pass, Manifold Mixup's hook), backward, SGD step. Every method (its default hyperparameters)
trains the same model on the same batch; the steps are interleaved (round r visits the methods in order,
round r + 1 in reverse, after one warm-up step each), so a change of load on a shared machine hits all alike.
Prints each method's median step and its overhead in percent of the vanilla step, and MixupE's step against
Mixup's (the paper states 1.3×: its clean forward is batched with the mixed one). The steps run under msda's
host allocator settings, as the CLI does (`--malloc default`: without them).
Targets (issue #17, on a GPU): every method ≤ 5 % over vanilla, MixupE ≤ 1.3× Mixup.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from msda_cli.mixing import MIXERS, build_mixer
from msda_cli.models import Normalized, build_model
from timing import add_malloc_option, apply_malloc, timed  # benchmarks/timing.py (run from the repository root)

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
NUM_CLASSES = {"digits-cnn": 10}  # the rest: CIFAR-100
MODEL_OPTIONS = {"digits-cnn": {"width": 16}}  # as the digits-* recipes (the demo) build it
OVERHEAD_TARGET, MIXUPE_TARGET = 5.0, 1.3


def build_step(arch: str, device: torch.device, batch: int, size: int):
    """(step(mixer, generator), num_classes): one training step on a fixed random batch."""
    num_classes = NUM_CLASSES.get(arch, 100)
    torch.manual_seed(0)
    model = Normalized(build_model(arch, num_classes=num_classes, **MODEL_OPTIONS.get(arch, {})),
                       CIFAR_MEAN, CIFAR_STD).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    y = torch.randint(0, num_classes, (batch,), generator=g).to(device)

    def step(mixer, generator):
        out = mixer.loss(model, x, y, num_classes, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    return step, num_classes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="preactresnet18")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="image side (32: CIFAR)")
    parser.add_argument("--reps", type=int, default=5, help="timed steps per method (median)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1 = stable timings)")
    parser.add_argument("--methods", default="all", help="comma-separated methods (vanilla is always timed)")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    memory = apply_malloc(args.malloc)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    names = sorted(MIXERS) if args.methods == "all" else args.methods.split(",")
    unknown = [n for n in names if n not in MIXERS]
    if unknown:
        print(f"unknown method(s): {', '.join(unknown)}; valid: {', '.join(sorted(MIXERS))}", file=sys.stderr)
        return 2
    names = ["vanilla"] + [n for n in names if n != "vanilla"]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    step, _ = build_step(args.arch, device, args.batch, args.size)
    mixers = {n: build_mixer(n) for n in names}
    gens = {n: torch.Generator().manual_seed(0) for n in names}
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for n in names:  # warm-up: first-call allocations, lazily built caches
        timed(lambda n=n: step(mixers[n], gens[n]), device)
    for r in range(args.reps):
        for n in (names if r % 2 == 0 else reversed(names)):
            w, c, _ = timed(lambda n=n: step(mixers[n], gens[n]), device)
            wall[n].append(w)
            cpu[n].append(c)
    med = {n: statistics.median(wall[n]) for n in names}
    med_cpu = {n: statistics.median(cpu[n]) for n in names}
    on_cpu = device.type == "cpu"
    print(f"{args.arch}, batch {args.batch}×3×{args.size}×{args.size}, device {device.type}, "
          f"{torch.get_num_threads()} thread(s), {args.reps} interleaved steps per method (medians); {memory}")
    print(f"{'method':<18}{'step ms':>10}{'overhead':>10}" + (f"{'CPU ms':>10}{'overhead':>10}" if on_cpu else "")
          + f"   target{'' if not on_cpu else ' (on a GPU)'}")
    missed = []
    for n in names:
        line = f"{n:<18}{med[n] * 1e3:10.1f}"
        if n == "vanilla":
            line += f"{'-':>10}" + (f"{med_cpu[n] * 1e3:10.1f}{'-':>10}" if on_cpu else "")
        else:
            over = 100 * (med[n] / med["vanilla"] - 1)
            line += f"{over:+9.1f}%"
            if on_cpu:
                line += f"{med_cpu[n] * 1e3:10.1f}{100 * (med_cpu[n] / med_cpu['vanilla'] - 1):+9.1f}%"
            exempt = n == "mixupe"  # two forward passes: its target is against Mixup, below
            line += "   -" if exempt else f"   ≤ {OVERHEAD_TARGET:.0f} %"
            if not exempt and over > OVERHEAD_TARGET:
                line += "  MISSED"
                missed.append(n)
        print(line)
    if "mixupe" in med and "mixup" in med:
        ratio = med["mixupe"] / med["mixup"]
        flag = "" if ratio <= MIXUPE_TARGET else "  MISSED"
        print(f"MixupE / Mixup step: {ratio:.2f}× (the paper: {MIXUPE_TARGET}×; target ≤ {MIXUPE_TARGET}×){flag}")
        if flag:
            missed.append("mixupe/mixup")
    print("all targets met" if not missed else "targets missed: " + ", ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
