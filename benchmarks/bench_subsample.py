"""Uncertainty-subsampling speed: samples scored per second, batched vs one mix at a time.

* batched (ours): `msda_cli.subsample.score_dataset`, the code `msda subsample` runs: a batch
  of anchors becomes B·M anchored DCutMix mixes, built with vectorized masks and scored in
  one forward pass.
* naive (baseline, written here): for every anchor and every one of its M mixes, draw φ,
  cut the nested boxes in Python, paste the partners' patches by slicing, count the ring
  areas for the soft label, and run a forward pass on that single image.

Both score the same anchors (random images, untrained model in eval mode) with the same
settings (M = 10, K − 1 = 2, α = 2/9, anchor share 1/3). The naive loop scores fewer anchors
(it is slow); the rate per anchor is what is compared. Medians of wall time and of this
process's CPU time (steadier on a shared machine) over `repeats`.
Usage: python benchmarks/bench_subsample.py [--arch digits-cnn|preactresnet18] [--anchors 384]
       [--naive-anchors 24] [--size 32] [--batch 32] [--repeats 3] [--device auto|cpu|cuda|all]
Target: batched / naive >= 10 on CPU (more on a GPU).
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import torch

from timing import timed  # benchmarks/timing.py (scripts run from the repository root)

from msda_cli.data import DatasetInfo, LabeledDataset, TensorDataset
from msda_cli.models import MODELS, Normalized, build_model
from msda_cli.subsample import ScoreSettings, score_dataset


@torch.inference_mode()
def naive_scores(model, x, y, num_classes, s: ScoreSettings, device, seed=0):
    """[N, M] losses, one mix and one forward pass at a time (partners: random other samples)."""
    rng = np.random.default_rng(seed)
    N, _, H, W = x.shape
    K = s.partners + 1
    out = np.zeros((N, s.mixes))
    for i in range(N):
        for m in range(s.mixes):
            phi = np.concatenate([[s.anchor_share], (1 - s.anchor_share) * rng.dirichlet([s.partner_alpha] * (K - 1))])
            img = x[i].clone()
            label = torch.zeros(num_classes, device=device)
            py, px, ph, pw = 0, 0, H, W
            prev = i
            # stick-breaking: box k keeps v = φ_{k−1} / (1 − Σ_{j<k−1} φ_j) of its parent
            for k in range(1, K):
                v = min(1.0, phi[k - 1] / max(1e-12, 1.0 - phi[:k - 1].sum()))
                h, w = round(ph * math.sqrt(max(0.0, 1 - v))), round(pw * math.sqrt(max(0.0, 1 - v)))
                y0, x0 = py + rng.integers(0, ph - h + 1), px + rng.integers(0, pw - w + 1)
                j = (i + 1 + rng.integers(0, N - 1)) % N
                img[:, y0:y0 + h, x0:x0 + w] = x[j][:, y0:y0 + h, x0:x0 + w]
                label[y[prev]] += (ph * pw - h * w) / (H * W)  # ring of the previous image
                py, px, ph, pw, prev = y0, x0, h, w, j
            label[y[prev]] += ph * pw / (H * W)  # the innermost box
            logits = model(img.unsqueeze(0))[0].float()
            out[i, m] = float(-(label * torch.log_softmax(logits, -1)).sum())
    return out


def run(device: torch.device, arch: str, anchors: int, naive_anchors: int, size: int, batch: int, repeats: int):
    if arch not in MODELS:
        print(f"[{arch} is not registered; falling back to digits-cnn]")
        arch = "digits-cnn"
    torch.manual_seed(0)
    C = 10
    model = Normalized(build_model(arch, num_classes=C, in_chans=3), (0.5,) * 3, (0.25,) * 3).to(device).eval()
    x = torch.rand(anchors, 3, size, size)
    y = torch.randint(0, C, (anchors,))
    info = DatasetInfo("bench", C, 3, size, (0.5,) * 3, (0.25,) * 3)
    data = LabeledDataset(TensorDataset(x, y), info, y)
    s = ScoreSettings(batch_size=batch)
    xd, yd = x[:naive_anchors].to(device), y[:naive_anchors].to(device)

    # warm-up (allocator, cudnn autotune, lazy imports)
    score_dataset(model, LabeledDataset(TensorDataset(x[:batch], y[:batch]), info, y[:batch]), C, s, device=device)
    naive_scores(model, xd[:4], yd[:4], C, s, device)

    fast, slow = [], []
    for r in range(repeats):
        jobs = [("batched", lambda: score_dataset(model, data, C, s, device=device)),
                ("naive", lambda: naive_scores(model, xd, yd, C, s, device))]
        for name, fn in (jobs if r % 2 == 0 else jobs[::-1]):
            wall, cpu, _ = timed(fn, device)
            (fast if name == "batched" else slow).append((wall, cpu))
    fw, fc = statistics.median(w for w, _ in fast), statistics.median(c for _, c in fast)
    sw, sc = statistics.median(w for w, _ in slow), statistics.median(c for _, c in slow)
    rate_f, rate_s = anchors / fw, naive_anchors / sw
    print(f"\n{device.type}  {arch}  {size}x{size}  M={s.mixes} K-1={s.partners}  batch={batch} anchors "
          f"({batch * s.mixes} images per forward)")
    print(f"  batched (msda subsample): {anchors:6d} anchors  {fw:7.3f} s  {rate_f:10.1f} samples/s "
          f"(cpu {anchors / max(fc, 1e-9):10.1f}/s)")
    print(f"  naive one mix at a time : {naive_anchors:6d} anchors  {sw:7.3f} s  {rate_s:10.1f} samples/s "
          f"(cpu {naive_anchors / max(sc, 1e-9):10.1f}/s)")
    print(f"  ratio batched / naive   : {rate_f / rate_s:.1f}x wall, "
          f"{(anchors / max(fc, 1e-9)) / (naive_anchors / max(sc, 1e-9)):.1f}x cpu time")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="digits-cnn")
    p.add_argument("--anchors", type=int, default=384)
    p.add_argument("--naive-anchors", type=int, default=24)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "all"])
    a = p.parse_args()
    if a.device == "auto":
        devices = ["cuda" if torch.cuda.is_available() else "cpu"]
    elif a.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [a.device]
    for d in devices:
        run(torch.device(d), a.arch, a.anchors, a.naive_anchors, a.size, a.batch, a.repeats)


if __name__ == "__main__":
    main()
