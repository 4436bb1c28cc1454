"""PGD speed: msda_cli.robust.pgd against torchattacks.PGD, same model, batch and settings.

Both sides do the work of a robust-accuracy evaluation of one batch: a clean forward pass,
`steps` PGD steps (forward + input gradient), and a forward pass that judges the result
(torchattacks: `model(atk(x, y))`; ours: the per-iterate bookkeeping, which checks each
iterate from the forward pass the next step needs anyway, plus one final check).

* ours (full work): `drop_broken=False`, every example takes every step, as torchattacks.
* ours (default):   broken examples leave the batch; the speed-up depends on how fast the
                    model breaks, so it is printed for information, the ratio that counts is
                    the full-work one.

Timings are interleaved (order reversed every repeat); medians of wall time and of this
process's CPU time (steadier on a shared machine) are reported.
Usage: python benchmarks/bench_attacks.py [--arch digits-cnn|preactresnet18] [--batch 128]
       [--steps 10] [--repeats 5] [--device cpu|cuda|all]
Target: ours / torchattacks <= 1.0 (no slower).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from timing import timed  # benchmarks/timing.py (scripts run from the repository root)

from msda_cli.models import MODELS, Normalized, build_model
from msda_cli.robust import pgd

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def run(device: torch.device, arch: str, batch: int, steps: int, eps: float, step_size: float, repeats: int):
    import torchattacks

    if arch not in MODELS:
        print(f"[{arch} is not registered; falling back to digits-cnn]")
        arch = "digits-cnn"
    torch.manual_seed(0)
    model = Normalized(build_model(arch, num_classes=10, in_chans=3), CIFAR_MEAN, CIFAR_STD).to(device)
    with torch.no_grad():  # give BatchNorm non-trivial running statistics, then freeze
        model.train()
        for _ in range(3):
            model(torch.rand(64, 3, 32, 32, device=device))
    model.eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, 32, 32, generator=g).to(device)
    with torch.no_grad():  # labels = the model's own predictions: clean accuracy 100 %
        y = model(x).argmax(dim=1)

    atk = torchattacks.PGD(model, eps=eps / 255, alpha=step_size / 255, steps=steps, random_start=True)

    def theirs():
        with torch.no_grad():
            clean = model(x)
        x_adv = atk(x, y)
        with torch.no_grad():
            return model(x_adv).argmax(1).eq(y).float().mean().item() * 100, clean

    def ours(drop):
        def fn():
            with torch.no_grad():
                clean = model(x)
            res = pgd(model, x, y, eps, step_size, steps, generator=torch.Generator().manual_seed(0),
                      drop_broken=drop, clean_logits=clean)
            return (~res.fooled).float().mean().item() * 100, clean
        return fn

    variants = {"torchattacks.PGD": theirs, "ours (full work)": ours(False), "ours (default)": ours(True)}
    times = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    acc = {}
    for fn in variants.values():  # warm-up
        fn()
    for r in range(repeats):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            t, c, (a, _) = timed(variants[name], device)
            times[name].append(t)
            cpu[name].append(c)
            acc[name] = a
    print(f"\ndevice={device.type} arch={arch} batch={batch} eps={eps}/255 step={step_size}/255 steps={steps} "
          f"repeats={repeats} threads={torch.get_num_threads()}")
    base = statistics.median(times["torchattacks.PGD"])
    base_cpu = statistics.median(cpu["torchattacks.PGD"])
    for name in variants:
        med, med_cpu = statistics.median(times[name]), statistics.median(cpu[name])
        print(f"  {name:18s} wall {med:7.3f} s (ratio {med / base:4.2f})   "
              f"process CPU {med_cpu:7.3f} s (ratio {med_cpu / base_cpu:4.2f})   robust acc {acc[name]:5.1f} %")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="digits-cnn")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--eps", type=float, default=8)
    p.add_argument("--step-size", type=float, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    a = p.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if a.device == "all" else [a.device]
    for d in devices:
        run(torch.device(d), a.arch, a.batch, a.steps, a.eps, a.step_size, a.repeats)


if __name__ == "__main__":
    main()
