"""HMix and GMix, from "A Unified Analysis of Mixed Sample Data Augmentation: A Loss Function
Perspective" (Park et al., NeurIPS 2022).

HMix: λ ~ Beta(α, α); a box of area r(1−λ)·H·W (centre uniform, clipped) takes the partner;
outside the box the two images are blended with weight λ/cut, cut = 1 − (box area)/(H·W), so
mean(M) = λ exactly. r → 0 is Mixup, r = 1 is CutMix; r ~ Beta(γ, γ) with γ → 0 approaches
Stochastic Mixup & CutMix.

GMix (the authors' code): s = min(λ, 1−λ), centre p uniform over the pixels, Gaussian blob
K(q) = exp(−π‖q − p‖² / (s·H·W)) carrying the minority image (M = K for λ < 0.5, else 1 − K).
Unclipped, the blob integrates to s·H·W, so E[M] = λ; the border cuts it, so the label uses the
realized mean of M. (The authors use s·H² for square images; s·H·W is the same there. The
paper's printed formula has an extra factor 2 in the denominator, with which E[M] ≠ λ; we follow
the code.)
"""

from __future__ import annotations

import math

import torch

from msda_cli.checks import check_float
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import ImageMixer, MixOutput, to_device
from msda_cli.mixing.cutmix import draw_centred_boxes
from msda_cli.mixing.masks import box_area, box_weights, inside_box, lerp_from_partner, outside_share
from msda_cli.mixing.sampling import beta, randint


@register_mixer("hmix", label="HMix")
class HMix(ImageMixer):
    """HMix: `alpha` (Beta(α, α) for λ), `r` (box ratio, fixed) or `gamma` (r ~ Beta(γ, γ) per draw)."""

    def __init__(self, alpha: float = 1.0, r: float = 0.5, gamma: float | None = None, mask_mode: str = "batch",
                 smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.r = check_float("r", r, min=0, max=1)
        self.gamma = None if gamma is None else check_float("gamma", gamma, min=0, open="min")

    def draw(self, shape, generator=None, lam=None) -> dict:
        H, W = shape[-2], shape[-1]
        params = self.draw_pair(self.alpha, shape[0], generator, lam)
        lam, n = params["lam"], len(params["lam"])
        if self.gamma is None:
            r = torch.full((n,), self.r, dtype=torch.float64)
        else:
            r = beta(self.gamma, self.gamma, n, generator)
        bounds = draw_centred_boxes(r * (1.0 - lam), H, W, generator)
        cut = outside_share(bounds, H, W)
        outside = torch.where(cut > 0, lam / cut.clamp_min(1e-12), torch.zeros_like(lam)).clamp(0.0, 1.0)
        return {**params, "r": r, "bounds": bounds, "outside": outside}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        H, W = x.shape[-2:]
        bounds = params["bounds"]
        outside = to_device(params["outside"], x.device, torch.float32).view(-1, 1, 1, 1)
        perm = to_device(params["index"][1], x.device)
        # M = λ/cut outside the box, 0 in it: one lerp from the partner (lerp with weight 0 is exact)
        bounds_dev = to_device(bounds, x.device)
        keep = box_weights(bounds_dev, H, W, x.dtype, inside=0.0).unsqueeze(1)
        x_mix = lerp_from_partner(x, perm, keep.mul_(outside.to(x.dtype)))

        def mask():
            inside = inside_box(bounds_dev, H, W)
            return torch.where(inside, torch.zeros((), device=x.device), outside)

        # mean(M) from the geometry: (HW − area) pixels of float32(λ/cut), exactly as the mask holds them
        out32 = params["outside"].float().double()
        realized = out32 * (H * W - box_area(bounds).double()) / (H * W)
        return self.finish(x, y, num_classes, params["index"], x_mix, mask, realized)


def gaussian_blob(centres: torch.Tensor, s: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """K [n,1,H,W] = exp(−π‖q − p‖² / (s·H·W)); centres [n,2] (row, col), s [n] (0 gives K = 0)."""
    device = centres.device
    rows = torch.arange(H, device=device, dtype=torch.float32).view(1, H, 1)
    cols = torch.arange(W, device=device, dtype=torch.float32).view(1, 1, W)
    c = centres.float().view(-1, 2, 1, 1)
    s = s.float().view(-1, 1, 1)
    scale = -math.pi / (s.clamp_min(1e-12) * (H * W))
    # separable: exp(a + b) = exp(a)·exp(b), so only n·(H + W) exponentials
    # s = 0 (λ ∈ {0, 1}): no blob; zeroing the row factor zeroes the product (the column factor is finite)
    row = torch.exp(scale * (rows - c[:, 0]) ** 2) * (s > 0)
    return (row * torch.exp(scale * (cols - c[:, 1]) ** 2)).unsqueeze(1)


@register_mixer("gmix", label="GMix")
class GMix(ImageMixer):
    """GMix: `alpha` (Beta(α, α) for λ; the paper uses 0.5 on CIFAR-100, 1 on ImageNet)."""

    def __init__(self, alpha: float = 0.5, mask_mode: str = "batch", smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")

    def draw(self, shape, generator=None, lam=None) -> dict:
        H, W = shape[-2], shape[-1]
        params = self.draw_pair(self.alpha, shape[0], generator, lam)
        n = len(params["lam"])
        params["centres"] = torch.stack([randint(H, n, generator), randint(W, n, generator)], dim=1)
        return params

    def apply(self, x, y, num_classes, params) -> MixOutput:
        H, W = x.shape[-2:]
        lam = params["lam"]
        s = torch.minimum(lam, 1.0 - lam)
        blob = gaussian_blob(to_device(params["centres"], x.device), to_device(s, x.device), H, W)
        # M = K (minority, λ < 0.5) or 1 − K, as one op: a + sign·K with (a, sign) = (0, 1) or (1, −1)
        # (bitwise 0 + K = K and 1 + (−K) = 1 − K)
        minority = lam < 0.5
        coef = torch.stack([torch.where(minority, 0.0, 1.0), torch.where(minority, 1.0, -1.0)])
        coef = to_device(coef.float(), x.device).view(2, -1, 1, 1, 1)
        mask = torch.addcmul(coef[0], coef[1], blob)
        x_mix = lerp_from_partner(x, to_device(params["index"][1], x.device), mask.to(x.dtype))
        return self.finish(x, y, num_classes, params["index"], x_mix, mask)
