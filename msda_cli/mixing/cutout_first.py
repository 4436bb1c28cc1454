"""Cutout before any method (`data.cutout: SIDE`): DeVries & Taylor's holes, then the run's method.

One square hole of SIDE pixels per image, centre uniform over the pixels, clipped at the border
(rows [cy − SIDE//2, cy + (SIDE+1)//2), as in their code for an even SIDE), set to 0 on the
batch's device. The CutMix paper combines it with Mixup and Manifold Mixup ("+ Cutout + Manifold
Mixup (α=1.0)"), applied "on input images". The centres are drawn from the step's generator before
the method's own draws, so a run stays deterministic; the targets are the method's. The hole is 0
in pixel space, as msda's `cutout` method makes it (their code zeroes the normalized image).
"""

from __future__ import annotations

import torch

from msda_cli.checks import check_int
from msda_cli.errors import MsdaError
from msda_cli.mixing.base import Mixer, MixOutput, LossOutput, to_device
from msda_cli.mixing.masks import box_weights, centred_bounds
from msda_cli.mixing.sampling import randint


def draw_holes(B: int, H: int, W: int, side: int, generator=None) -> torch.Tensor:
    """[B, 4] long (y0, y1, x0, x1) on the CPU: one hole of `side` pixels per image, centre uniform, clipped."""
    cy = randint(H, B, generator)
    cx = randint(W, B, generator)
    sides = torch.full((B,), side, dtype=torch.long)
    return centred_bounds(cy, cx, sides, sides, H, W)


def cut_holes(x: torch.Tensor, side: int, generator=None) -> torch.Tensor:
    """x [B, C, H, W] with one hole per image set to 0 (a new tensor, on x's device)."""
    if x.dim() != 4:
        raise MsdaError(f"data.cutout cuts holes in images [B, C, H, W]; got input of shape {tuple(x.shape)}")
    B, _, H, W = x.shape
    bounds = to_device(draw_holes(B, H, W, side, generator), x.device)
    return x * box_weights(bounds, H, W, x.dtype, inside=0.0).unsqueeze(1)


class CutoutFirst(Mixer):
    """`method` applied to inputs that first lost one Cutout hole of `side` pixels each."""

    image_only = True

    def __init__(self, method: Mixer, side: int):
        self.method = method
        self.side = check_int("data.cutout", side, min=1)
        self.name = method.name
        self.smoothing = method.smoothing

    def hparams(self) -> dict:
        return self.method.hparams()

    def mix(self, x, y, num_classes, generator=None, lam=None) -> MixOutput:
        return self.method.mix(cut_holes(x, self.side, generator), y, num_classes, generator=generator, lam=lam)

    def loss(self, model, x, y, num_classes: int, generator=None) -> LossOutput:
        return self.method.loss(model, cut_holes(x, self.side, generator), y, num_classes, generator=generator)
