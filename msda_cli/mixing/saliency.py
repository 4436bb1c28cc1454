"""Spectral-residual saliency (Hou & Zhang, CVPR 2007) with torch.fft, on the device.

SaliencyMix and Saliency-DCutMix centre their patches on the most salient pixel of the
source image. As in OpenCV's `StaticSaliencySpectralResidual`, the residual is computed on a
small copy of the image (≤ 64 px a side), which is what makes the peak stable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

WORK_SIZE = 64


_MATRICES: dict = {}


def _blur_matrix(n: int, taps: torch.Tensor, device) -> torch.Tensor:
    """[n, n] matrix applying the 1-D filter `taps` (odd length) with replicate borders.

    Built once per (n, taps, device) and cached: it depends on nothing else.
    """
    key = (n, id(taps), device)  # the taps are module-level constants, alive as long as the cache
    mat = _MATRICES.get(key)
    if mat is None:
        r = taps.numel() // 2
        src = (torch.arange(n).view(n, 1) + torch.arange(-r, r + 1).view(1, -1)).clamp(0, n - 1)
        mat = torch.zeros(n, n, dtype=taps.dtype)
        mat.scatter_add_(1, src, taps.expand(n, -1).contiguous())
        mat = _MATRICES[key] = mat.to(device)
    return mat


def _separable(img: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter [N, h, w] along both axes as two small batched matmuls (replicate borders)."""
    h, w = img.shape[-2:]
    rows = _blur_matrix(h, taps, img.device)
    cols = _blur_matrix(w, taps, img.device)
    return rows @ img @ cols.T


_TAPS: dict = {}


def _gaussian_taps(sigma: float) -> torch.Tensor:
    taps = _TAPS.get(sigma)
    if taps is None:
        radius = max(1, int(math.ceil(3 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        taps = _TAPS[sigma] = k / k.sum()
    return taps


_BOX3 = torch.full((3,), 1.0 / 3.0)


def _power(z: torch.Tensor) -> torch.Tensor:
    """|z|² of a complex tensor, without the (slow) complex abs: re² + im², one square over the
    contiguous (re, im) pairs and one add."""
    sq = torch.view_as_real(z).square()
    return torch.add(sq[..., 0], sq[..., 1])


def saliency_map(x: torch.Tensor) -> torch.Tensor:
    """Spectral-residual saliency [B, h, w] of images x [B, C, H, W] (h, w ≤ WORK_SIZE).

    F = fft2(gray); residual R = log|F| − box3(log|F|); S = |ifft2(exp(R + i·arg F))|², blurred.
    exp(R + i·arg F) = F · exp(R)/|F| = F · exp(−box3(log|F|)): no complex exp, angle or abs.
    """
    gray = x.float().mean(dim=1)
    H, W = gray.shape[-2:]
    scale = min(1.0, WORK_SIZE / max(H, W))
    if scale < 1.0:
        size = (max(1, round(H * scale)), max(1, round(W * scale)))
        gray = F.interpolate(gray.unsqueeze(1), size=size, mode="area").squeeze(1)
    spec = torch.fft.fft2(gray)
    log_power = _power(spec).add_(1e-16).log_()  # 2·log|F|
    factor = _separable(log_power, _BOX3).mul_(-0.5).exp_()  # box3 is linear: −box3(log|F|)
    spec.mul_(factor)  # complex × real: each of (re, im) times the factor, exactly
    sal = _power(torch.fft.ifft2(spec))
    return _separable(sal, _gaussian_taps(max(1.0, 2.5 * gray.shape[-1] / WORK_SIZE)))


def salient_centres(x: torch.Tensor) -> torch.Tensor:
    """[B, 2] long (row, col) in x's pixel grid of each image's most salient point (on x.device)."""
    sal = saliency_map(x)
    h, w = sal.shape[-2:]
    H, W = x.shape[-2:]
    flat = sal.flatten(1).argmax(dim=1)
    r, c = flat // w, flat % w
    # centre of the work-grid cell, mapped back to full resolution
    r = ((r.double() + 0.5) * (H / h)).long().clamp(0, H - 1)
    c = ((c.double() + 0.5) * (W / w)).long().clamp(0, W - 1)
    return torch.stack([r, c], dim=1)
