"""K-image methods from "Observations on K-image Expansion of Image-Mixing Augmentation"
(Jeong et al.): DMixup, DCutMix, Saliency-DCutMix.

φ ~ Dir(α·1_K). `index` [K, B]: row 0 is the sample itself, rows 1..K−1 independent random
permutations. `lam=` fixes φ_0 (the sample's own share); the other K−1 sources then share
1 − λ by Dir(α·1_{K−1}) — this is how uncertainty subsampling builds its anchored mixes.
"""

from __future__ import annotations

import numpy as np
import torch

from msda_cli.checks import check_choice, check_float, check_int
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import (
    MASK_MODES,
    Mixer,
    MixOutput,
    expand_batch,
    label_mix,
    lam_tensor,
    to_device,
)
from msda_cli.mixing.masks import (
    box_weights,
    cached_arange,
    centred_bounds,
    gather_like,
    inside_box,
    lerp_from_partner,
    owner_shares,
    paste_boxes,
)
from msda_cli.mixing.sampling import dirichlet


def draw_phi(k: int, alpha: float, n: int, generator, lam=None) -> torch.Tensor:
    """[n, K] float64 mixing weights: Dir(α·1_K), or φ_0 = λ and the rest (1 − λ)·Dir(α·1_{K−1})."""
    if lam is None:
        return dirichlet([alpha] * k, n, generator)
    lam = lam_tensor(lam, n)
    rest = dirichlet([alpha] * (k - 1), n, generator) if k > 2 else torch.ones(n, 1, dtype=torch.float64)
    return torch.cat([lam[:, None], (1.0 - lam)[:, None] * rest], dim=1)


def draw_index(k: int, B: int, generator) -> torch.Tensor:
    """[K, B]: row 0 the identity, rows 1..K−1 independent random permutations."""
    rows = [torch.arange(B)] + [torch.randperm(B, generator=generator) for _ in range(k - 1)]
    return torch.stack(rows)


# The box geometry below works on the O(n·K) CPU draws in NumPy: the same IEEE float64 operations
# (sequential cumsum, correctly rounded sqrt, round half to even, truncation), a fraction of torch's
# per-op cost on such tiny arrays.


def stick_breaking(phi: torch.Tensor) -> torch.Tensor:
    """v [n, K−1] with v_0 = φ_0, v_k = φ_k / Π_{j<k}(1 − v_j) = φ_k / (1 − Σ_{j<k} φ_j), in [0, 1]."""
    p = phi.numpy()
    rem = 1.0 - np.cumsum(p, axis=1) + p  # 1 − Σ_{j<k} φ_j
    v = np.where(rem > 1e-12, p / np.maximum(rem, 1e-12), 1.0)
    return torch.from_numpy(np.minimum(np.maximum(v[:, :-1], 0.0), 1.0))


def nested_sides(v: torch.Tensor, H: int, W: int, applied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box sides [n, K−1]: box k = round(parent sides · √(1 − v_{k−1})), parent of box 1 = the image."""
    v, applied = v.numpy(), applied.numpy()
    n, km1 = v.shape
    hs = np.empty((n, km1), dtype=np.int64)
    ws = np.empty((n, km1), dtype=np.int64)
    ph = np.full(n, H, dtype=np.int64)
    pw = np.full(n, W, dtype=np.int64)
    for k in range(km1):
        shrink = np.sqrt(1.0 - v[:, k])
        ph = hs[:, k] = np.round(ph * shrink).astype(np.int64) * applied
        pw = ws[:, k] = np.round(pw * shrink).astype(np.int64) * applied
    return torch.from_numpy(hs), torch.from_numpy(ws)


def nested_boxes(hs: torch.Tensor, ws: torch.Tensor, H: int, W: int, generator) -> torch.Tensor:
    """[n, K−1, 4] nested boxes: box k (sides hs, ws [n, K−1]) uniform inside box k−1 (box 0 inside the
    image). The uniforms are drawn at once, in the order of one `randint` per coordinate per box."""
    n, km1 = hs.shape
    u = torch.rand(km1, 2, n, generator=generator, dtype=torch.float64).numpy()
    hs, ws = hs.numpy(), ws.numpy()
    bounds = np.empty((n, km1, 4), dtype=np.int64)
    py = np.zeros(n, dtype=np.int64)
    px = np.zeros(n, dtype=np.int64)
    ph = np.full(n, H, dtype=np.int64)
    pw = np.full(n, W, dtype=np.int64)
    for k in range(km1):
        h, w = hs[:, k], ws[:, k]
        for off, coord, high in ((0, py, ph - h + 1), (1, px, pw - w + 1)):  # sampling.randint, in place
            coord += np.maximum(np.minimum((u[k, off] * high).astype(np.int64), high - 1), 0)
        bounds[:, k] = np.stack([py, py + h, px, px + w], axis=1)
        ph, pw = h, w
    return torch.from_numpy(bounds)


@register_mixer("dmixup", label="DMixup")
class DMixup(Mixer):
    """DMixup: x̃ = Σ_k φ_k x[π_k], ỹ = Σ_k φ_k y[π_k], φ ~ Dir(α·1_K) per sample (images or tabular)."""

    def __init__(self, k: int = 3, alpha: float = 1.0, smoothing: float = 0.0):
        super().__init__(smoothing)
        self.k = check_int("k", k, min=2)
        self.alpha = check_float("alpha", alpha, min=0, open="min")

    def draw(self, shape, generator=None, lam=None) -> dict:
        B = shape[0]
        phi = draw_phi(self.k, self.alpha, B, generator, lam)
        return {"phi": phi, "index": draw_index(self.k, B, generator)}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        index = to_device(params["index"], x.device)
        phi = to_device(params["phi"], x.device, torch.float32)
        view = (-1,) + (1,) * (x.dim() - 1)
        w = phi.to(x.dtype)
        x_mix = x * w[:, 0].view(view)
        for k in range(1, self.k):
            x_mix = torch.addcmul(x_mix, gather_like(x, index[k]), w[:, k].view(view))
        target = label_mix(y, num_classes, self.smoothing, index, phi)
        return MixOutput(x_mix, target, phi[:, 0], None, index, phi)


class _KImageCut(Mixer):
    image_only = True

    def __init__(self, k: int = 3, alpha: float = 1.0, prob: float = 1.0, mask_mode: str = "sample",
                 smoothing: float = 0.0):
        super().__init__(smoothing)
        self.k = check_int("k", k, min=2)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.prob = check_float("prob", prob, min=0, max=1)
        self.mask_mode = check_choice("mask_mode", mask_mode, MASK_MODES)

    def _draw_common(self, shape, generator, lam):
        B, H, W = shape[0], shape[-2], shape[-1]
        n = 1 if self.mask_mode == "batch" else B
        # One coin per batch in both modes: the whole mix is applied to a batch with probability p.
        applied = (torch.rand(1, generator=generator, dtype=torch.float64) < self.prob).long().expand(n).contiguous()
        phi = draw_phi(self.k, self.alpha, n, generator, lam)
        index = draw_index(self.k, B, generator)
        hs, ws = nested_sides(stick_breaking(phi), H, W, applied)
        return n, H, W, applied, phi, index, hs, ws

    def _finish(self, x, y, num_classes, index, owner, x_mix, shares=None) -> MixOutput:
        """`owner`: the source map [n,1,H,W] uint8, or a function building it (then `shares` is given)."""
        B = x.shape[0]
        shares = owner_shares(owner, self.k) if shares is None else to_device(shares, x.device).float()
        shares = expand_batch(shares, B)
        target = label_mix(y, num_classes, self.smoothing, index, shares)
        sources = lambda: expand_batch(owner() if callable(owner) else owner, B)  # noqa: E731
        return MixOutput(x_mix, target, shares[:, 0], None, index, shares, sources)


@register_mixer("dcutmix", label="DCutMix")
class DCutMix(_KImageCut):
    """DCutMix (authors' Algorithm 1): nested boxes by stick-breaking; box k (sides
    round(parent · √(1 − v_{k−1}))) is placed uniformly inside box k−1 and takes image π_k.
    Labels are the realized ring areas. `prob`: probability that a batch is mixed at all (one
    coin per batch, as METHODS.md and the authors' code). `mask_mode: sample` (the default) draws
    φ and the box chain per sample, as the authors' code does; `batch` draws one φ and one box
    chain for the whole batch.
    """

    def draw(self, shape, generator=None, lam=None) -> dict:
        n, H, W, applied, phi, index, hs, ws = self._draw_common(shape, generator, lam)
        return {"phi": phi, "applied": applied, "index": index, "bounds": nested_boxes(hs, ws, H, W, generator)}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        H, W = x.shape[-2:]
        bounds = params["bounds"]  # [n, K−1, 4] CPU
        index = to_device(params["index"], x.device)
        n = bounds.shape[0]
        def owner():  # nested boxes: the number of boxes holding a pixel is its source
            bounds_dev = to_device(bounds, x.device)
            own = inside_box(bounds_dev[:, 0], H, W).to(torch.uint8)
            for k in range(2, self.k):
                own += inside_box(bounds_dev[:, k - 1], H, W)
            return own

        if n == 1:  # each paste lies inside the previous one
            x_mix = paste_boxes(x, [(index[k], bounds[0, k - 1]) for k in range(1, self.k)])
        else:  # per-sample boxes: 0/1 masks of all boxes at once, then one lerp per source
            x_mix = paste_sample_boxes(x, index, box_weights(to_device(bounds, x.device), H, W, x.dtype, 1.0))

        # nested boxes: the realized ring areas, exactly the pixel counts of `owner`
        b = bounds.numpy()
        areas = np.zeros((n, self.k + 1), dtype=np.float64)
        areas[:, 0] = H * W
        areas[:, 1:-1] = (b[..., 1] - b[..., 0]) * (b[..., 3] - b[..., 2])
        shares = torch.from_numpy((areas[:, :-1] - areas[:, 1:]) / (H * W))
        return self._finish(x, y, num_classes, index, owner, x_mix, shares)


@register_mixer("saliency-dcutmix", label="Saliency-DCutMix")
class SaliencyDCutMix(_KImageCut):
    """Saliency-DCutMix: DCutMix box sizes, but patch k is centred on the most salient pixel
    (spectral residual) of its source image π_k, pasted at that place, clipped; later patches
    cover earlier ones. Labels are the realized visible fractions. Per sample by default (as
    DCutMix); batch mode places each patch by the saliency of the first sample's source (as
    SaliencyMix's code does)."""

    def draw(self, shape, generator=None, lam=None) -> dict:
        n, H, W, applied, phi, index, hs, ws = self._draw_common(shape, generator, lam)
        return {"phi": phi, "applied": applied, "index": index, "sides": torch.stack([hs, ws], dim=2)}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        from msda_cli.mixing.saliency import salient_centres

        H, W = x.shape[-2:]
        sides = params["sides"]  # [n, K−1, 2] CPU
        index = to_device(params["index"], x.device)
        n = sides.shape[0]
        sides_dev = to_device(sides, x.device)
        km1 = self.k - 1
        if n == 1:
            centres = salient_centres(gather_like(x, index[1:, 0]))  # [K−1, 2]
        else:
            sal = salient_centres(x)  # [B, 2]
            centres = sal.index_select(0, index[1:].reshape(-1)).view(km1, n, 2).transpose(0, 1)
        centres = centres.reshape(n * km1, 2)
        sides_flat = sides_dev.reshape(n * km1, 2)
        bounds = centred_bounds(centres[:, 0], centres[:, 1], sides_flat[:, 0], sides_flat[:, 1], H, W)
        inside = box_weights(bounds.view(n, km1, 4), H, W, x.dtype, 1.0)  # [n, K−1, H, W]
        # a pixel's source is the last patch holding it
        rank = cached_arange(self.k, x.device)[1:].to(x.dtype).view(1, km1, 1, 1)
        owner = (inside * rank).amax(dim=1, keepdim=True).to(torch.uint8)
        x_mix = paste_sample_boxes(x, index, inside)  # batch mode: the [1, K−1, H, W] masks broadcast
        return self._finish(x, y, num_classes, index, owner, x_mix)


def paste_sample_boxes(x: torch.Tensor, index: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Per-sample boxes pasted in order k = 1..K−1 (later on top): pixel from x[index[k]] inside box k.

    `inside` [B, K−1, H, W] (or [1, K−1, H, W]: one set for the batch) 0/1 masks in x's dtype. One gather
    and one in-place lerp per source (exact for 0/1 weights); on the CPU far cheaper than a gather over a
    per-pixel source index.
    """
    out = lerp_from_partner(x, index[1], 1.0 - inside[:, :1])
    for k in range(2, index.shape[0]):
        out.lerp_(x.index_select(0, index[k]), inside[:, k - 1:k])
    return out
