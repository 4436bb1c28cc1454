"""Time every mixing method and print its ratio to timm's batch-mode Mixup/CutMix on the same batch.

    .venv/bin/python benchmarks/bench_mixers.py [--repeats 5] [--device cpu|cuda|all] [--threads 1]

Baselines (measured in the same run, on the same batch):
- blend methods (mixup, dmixup, vanilla) against timm `Mixup(mixup_alpha=1, mode="batch")`;
- every mask method against timm `Mixup(cutmix_alpha=1, mode="batch")` (batch CutMix);
  target: within 3×. timm mutates its input in place; it is timed on a reused buffer, without
  a clone, which favours timm.
- per-sample modes against a Python loop over the samples: timm's `mode="elem"` (its
  per-sample loop) for the two-image methods, and a straightforward per-sample loop written
  below for DCutMix; target: ≥ 10× faster at batch 128. timm's elem loop is CutMix's (Mixup's)
  own loop; for the other mask methods it is a proxy (a loop of theirs would do at least that
  work per sample).
Model-based methods (mixupe, manifold-mixup) are timed by their `mix()` (the Mixup part); PuzzleMix and
Co-Mixup by their `mix()` under the model-free stand-in saliency (graph cuts per image on the CPU: no
≤3× target). Their real cost is the training step: a last section times one step (forward and
backward of each method's loss on `--step-arch`, no optimizer step) of Vanilla, Mixup, PuzzleMix and
Co-Mixup on the 32 px batch and prints the ratio to the Vanilla step (DCutMix Table 2's time-ratio
column) and to the Mixup step; PuzzleMix's and Co-Mixup's include the saliency pass, a second
forward and backward.

Every ratio comes from calls interleaved with the baseline's (round robin, alternating order, median
of each), so that a change of load on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np
import torch

from msda_cli.mixing import MIXERS, build_mixer, method_hparams
from msda_cli.mixing.base import one_hot
from msda_cli.mixing.kimage import paste_sample_boxes
from msda_cli.mixing.masks import box_weights
from timing import add_malloc_option, apply_malloc  # benchmarks/timing.py (run from the repository root)

NUM_CLASSES = 100
SHAPES = [(128, 3, 32, 32), (64, 3, 224, 224)]
BLEND = {"vanilla", "mixup", "dmixup", "mixupe", "manifold-mixup"}
GRAPH_CUT = {"puzzlemix", "comixup"}  # optimization methods: per-image graph cuts on the CPU, no ≤3× target
STEP_METHODS = ("vanilla", "mixup", "puzzlemix", "comixup")


def timed(fns, repeats: int, device: torch.device) -> list[float]:
    """Median seconds per call of each function (after one warm-up call each), the calls interleaved:
    round r calls them in order, round r + 1 in reverse order."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fns[i]()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def naive_dcutmix(x, y, num_classes: int, k: int, alpha: float, rng: np.random.Generator):
    """DCutMix with one φ and one box chain per sample, written as a plain loop over the samples:
    each sample pastes its K−1 boxes by slicing and records its ring areas; the soft targets are
    then built in one vectorized step, as timm's per-sample loop builds its targets (per-sample
    tensor updates of the labels would make the loop needlessly slow)."""
    B, _, H, W = x.shape
    out = x.clone()
    perms = [list(range(B))] + [torch.randperm(B).tolist() for _ in range(k - 1)]
    shares = []
    for b in range(B):
        phi = rng.dirichlet([alpha] * k)
        ph, pw, py, px, rem = H, W, 0, 0, 1.0
        areas = [H * W]
        for j in range(1, k):
            v = min(1.0, phi[j - 1] / rem) if rem > 1e-12 else 1.0
            rem -= phi[j - 1]
            h, w = round(ph * math.sqrt(1 - v)), round(pw * math.sqrt(1 - v))
            y0 = py + int(rng.integers(0, ph - h + 1))
            x0 = px + int(rng.integers(0, pw - w + 1))
            src = perms[j][b]
            out[b, :, y0:y0 + h, x0:x0 + w] = x[src, :, y0:y0 + h, x0:x0 + w]
            areas.append(h * w)
            ph, pw, py, px = h, w, y0, x0
        areas.append(0)
        shares.append([(areas[j] - areas[j + 1]) / (H * W) for j in range(k)])
    w = torch.tensor(shares, device=x.device)  # [B, K]
    Y = one_hot(y, num_classes)
    index = torch.tensor(perms, device=x.device)  # [K, B]
    target = sum(w[:, j:j + 1] * Y[index[j]] for j in range(k))
    return out, target


def timm_mixer(kind: str, mode: str):
    from timm.data import Mixup

    if kind == "mixup":
        return Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, mode=mode, label_smoothing=0.0, num_classes=NUM_CLASSES)
    return Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode=mode, label_smoothing=0.0, num_classes=NUM_CLASSES)


def bench_device(device: torch.device, repeats: int, shapes) -> list[str]:
    failures = []
    np.random.seed(0)
    for shape in shapes:
        B = shape[0]
        g = torch.Generator().manual_seed(0)
        x = torch.rand(shape, generator=g).to(device)
        y = torch.randint(0, NUM_CLASSES, (B,), generator=g).to(device)
        buf = x.clone()
        base, base_fn = {}, {}
        for kind in ("mixup", "cutmix"):
            for mode in ("batch", "elem"):
                m = timm_mixer(kind, mode)
                if mode == "elem" and device.type != "cpu":
                    base[kind, mode] = float("nan")  # timm's elem mode runs its loop on the CPU side
                    base_fn[kind, mode] = None
                    continue
                base_fn[kind, mode] = lambda m=m: m(buf, y)
        names = [key for key, fn in base_fn.items() if fn is not None]
        for key, t in zip(names, timed([base_fn[key] for key in names], repeats, device)):
            base[key] = t
        shape_s = "x".join(map(str, shape))
        print(f"\n## {device.type}  batch {shape_s}   timm batch Mixup {base['mixup', 'batch'] * 1e3:.2f} ms, "
              f"batch CutMix {base['cutmix', 'batch'] * 1e3:.2f} ms, elem Mixup "
              f"{base['mixup', 'elem'] * 1e3:.2f} ms, elem CutMix {base['cutmix', 'elem'] * 1e3:.2f} ms")
        print(f"{'method':<18}{'mode':<8}{'ms/batch':>10}  {'baseline':<18}{'base ms':>9}{'ratio':>8}  target")
        gen = torch.Generator().manual_seed(1)
        for name in sorted(MIXERS):
            modes = ["batch", "sample"] if "mask_mode" in method_hparams(name) else [None]
            for mode in modes:
                mixer = build_mixer(name, **({"mask_mode": mode} if mode else {}))
                blend = name in BLEND
                key = ("mixup" if blend else "cutmix", "elem" if mode == "sample" else "batch")
                ours = lambda: mixer(x, y, NUM_CLASSES, generator=gen)  # noqa: E731
                if base_fn[key] is None:
                    t, ref = timed([ours], repeats, device)[0], base[key]
                else:  # interleaved with its baseline: the ratio is taken under the same load
                    t, ref = timed([ours, base_fn[key]], repeats, device)
                if mode == "sample":
                    ref_name = "timm elem " + ("Mixup" if blend else "CutMix")
                    ratio = ref / t  # speed-up over the per-sample loop
                    ok = (ratio >= 10 or B != 128 or math.isnan(ratio))
                    target = "≥10× faster" + ("" if ok else "  MISSED")
                    shown = f"{ratio:6.1f}×"
                else:
                    ref_name = "timm batch " + ("Mixup" if blend else "CutMix")
                    ratio = t / ref
                    ok = blend or name in GRAPH_CUT or ratio <= 3
                    target = ("≤3× slower" if not (blend or name in GRAPH_CUT) else "-") + ("" if ok else "  MISSED")
                    shown = f"{ratio:6.2f} " if ratio < 1000 else f"{ratio:6.0f} "  # graph cuts: thousands
                if not ok:
                    failures.append(f"{device.type} {shape_s} {name} {mode}")
                print(f"{name:<18}{mode or '-':<8}{t * 1e3:10.2f}  {ref_name:<18}{ref * 1e3:9.2f}{shown:>8}  {target}")
        # per-sample DCutMix against a straightforward Python loop over the samples
        rng = np.random.default_rng(0)
        x_cpu, y_cpu = x, y
        ours = build_mixer("dcutmix", k=3, alpha=1.0, mask_mode="sample")
        # the floor of any eager per-sample paste: the K−1 gathers and 0/1 blends alone, masks prebuilt
        params = ours.draw(tuple(x.shape), generator=gen)
        index = params["index"].to(device)
        inside = box_weights(params["bounds"].to(device), *x.shape[-2:], x.dtype, 1.0)
        t_ours, t_loop, t_floor = timed([lambda: ours(x, y, NUM_CLASSES, generator=gen),
                                         lambda: naive_dcutmix(x_cpu, y_cpu, NUM_CLASSES, 3, 1.0, rng),
                                         lambda: paste_sample_boxes(x, index, inside)], repeats, device)
        speed = t_loop / t_ours
        ok = speed >= 10 or B != 128
        if not ok:
            failures.append(f"{device.type} {shape_s} dcutmix sample vs loop")
        print(f"dcutmix (K=3) per-sample: ours {t_ours * 1e3:.2f} ms, Python loop {t_loop * 1e3:.2f} ms "
              f"-> {speed:.1f}× faster {'(target ≥10× at batch 128)' if B == 128 else ''}"
              f"{'' if ok else '  MISSED'}")
        print(f"  of which the tensor work alone (2 gathers + 2 blends, masks prebuilt): {t_floor * 1e3:.2f} ms "
              f"-> the loop is {t_loop / t_floor:.1f}× that floor")
    return failures


def bench_steps(device: torch.device, repeats: int, shape, arch: str) -> None:
    """One training step (loss, forward and backward) per method on `arch`, interleaved, against Vanilla's."""
    from msda_cli.models import build_model

    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g).to(device)
    y = torch.randint(0, NUM_CLASSES, (shape[0],), generator=g).to(device)
    model = build_model(arch, num_classes=NUM_CLASSES).to(device).train()
    gen = torch.Generator().manual_seed(2)

    def step(mixer):
        def run():
            out = mixer.loss(model, x, y, NUM_CLASSES, generator=gen)
            model.zero_grad(set_to_none=True)
            out.loss.backward()
        return run

    times = timed([step(build_mixer(name)) for name in STEP_METHODS], repeats, device)
    per = dict(zip(STEP_METHODS, times))
    print(f"\n## {device.type}  training step per method: {arch}, batch {'x'.join(map(str, shape))} "
          f"(forward + backward of the loss, no optimizer step)")
    print(f"{'method':<18}{'ms/step':>10}{'/ Vanilla':>11}{'/ Mixup':>9}")
    for name in STEP_METHODS:
        print(f"{name:<18}{per[name] * 1e3:10.1f}{per[name] / per['vanilla']:10.2f}×{per[name] / per['mixup']:8.2f}×")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="timed calls per measurement (median)")
    parser.add_argument("--device", default="all", choices=["cpu", "cuda", "all"],
                        help="all: the CPU, and CUDA when available")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1 = stable timings)")
    parser.add_argument("--shapes", default="all", choices=["all", "32", "224"], help="which batch shapes to time")
    parser.add_argument("--step-arch", default="preactresnet18", help="network of the training-step section")
    parser.add_argument("--step-repeats", type=int, default=3, help="timed steps per method (median)")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    shapes = [s for s in SHAPES if args.shapes in ("all", str(s[-1]))]
    torch.set_num_threads(args.threads)
    print(f"{args.threads} CPU thread(s); {apply_malloc(args.malloc)}; timm's mixers and ours share the process")
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    elif args.device == "cuda":
        print("CUDA is not available", file=sys.stderr)
        return 2
    failures = []
    for device in devices:
        failures += bench_device(device, args.repeats, shapes)
        small = [s for s in SHAPES if s[-1] <= 32]  # the CIFAR batch: DCutMix Table 2's setting
        if small:
            bench_steps(device, args.step_repeats, small[0], args.step_arch)
    print("\nall targets met" if not failures else "\ntargets missed: " + "; ".join(failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
