"""K-image methods from "Observations on K-image Expansion of Image-Mixing Augmentation"
(Jeong et al.): DMixup, DCutMix, Saliency-DCutMix.

φ ~ Dir(α·1_K). `index` [K, B]: row 0 is the sample itself, rows 1..K−1 independent random
permutations. `lam=` fixes φ_0 (the sample's own share); the other K−1 sources then share
1 − λ by Dir(α·1_{K−1}) — this is how uncertainty subsampling builds its anchored mixes.
"""

from __future__ import annotations

import torch

from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import (
    MASK_MODES,
    Mixer,
    MixOutput,
    check_choice,
    check_int,
    check_range,
    expand_batch,
    label_mix,
    lam_tensor,
    to_device,
)
from msda_cli.mixing.masks import (
    centred_bounds,
    compose_owner,
    gather_batch,
    inside_box,
    owner_shares,
    paste_batch_window,
    paste_partner_boxes,
)
from msda_cli.mixing.sampling import dirichlet, randint


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


def stick_breaking(phi: torch.Tensor) -> torch.Tensor:
    """v [n, K−1] with v_0 = φ_0, v_k = φ_k / Π_{j<k}(1 − v_j) = φ_k / (1 − Σ_{j<k} φ_j), in [0, 1]."""
    rem = 1.0 - torch.cumsum(phi, dim=1) + phi  # 1 − Σ_{j<k} φ_j
    v = torch.where(rem > 1e-12, phi / rem.clamp_min(1e-12), torch.ones_like(phi))
    return v[:, :-1].clamp(0.0, 1.0)


def nested_sides(v: torch.Tensor, H: int, W: int, applied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box sides [n, K−1]: box k = round(parent sides · √(1 − v_{k−1})), parent of box 1 = the image."""
    n, km1 = v.shape
    hs, ws = [], []
    ph = torch.full((n,), H, dtype=torch.long)
    pw = torch.full((n,), W, dtype=torch.long)
    for k in range(km1):
        shrink = torch.sqrt(1.0 - v[:, k])
        ph = torch.round(ph * shrink).long() * applied
        pw = torch.round(pw * shrink).long() * applied
        hs.append(ph)
        ws.append(pw)
    return torch.stack(hs, 1), torch.stack(ws, 1)


@register_mixer("dmixup")
class DMixup(Mixer):
    """DMixup: x̃ = Σ_k φ_k x[π_k], ỹ = Σ_k φ_k y[π_k], φ ~ Dir(α·1_K) per sample (images or tabular)."""

    def __init__(self, k: int = 3, alpha: float = 1.0, smoothing: float = 0.0):
        super().__init__(smoothing)
        self.k = check_int("k", k, 2)
        self.alpha = check_range("alpha", alpha, 0.0, low_open=True)

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
            x_mix = torch.addcmul(x_mix, gather_batch(x, index[k]), w[:, k].view(view))
        target = label_mix(y, num_classes, self.smoothing, index, phi)
        return MixOutput(x_mix, target, phi[:, 0], None, index, phi)


class _KImageCut(Mixer):
    image_only = True

    def __init__(self, k: int = 3, alpha: float = 1.0, prob: float = 1.0, mask_mode: str = "batch",
                 smoothing: float = 0.0):
        super().__init__(smoothing)
        self.k = check_int("k", k, 2)
        self.alpha = check_range("alpha", alpha, 0.0, low_open=True)
        self.prob = check_range("prob", prob, 0.0, 1.0)
        self.mask_mode = check_choice("mask_mode", mask_mode, MASK_MODES)

    def _draw_common(self, shape, generator, lam):
        B, H, W = shape[0], shape[-2], shape[-1]
        n = 1 if self.mask_mode == "batch" else B
        applied = (torch.rand(n, generator=generator, dtype=torch.float64) < self.prob).long()
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


@register_mixer("dcutmix")
class DCutMix(_KImageCut):
    """DCutMix (authors' Algorithm 1): nested boxes by stick-breaking; box k (sides
    round(parent · √(1 − v_{k−1}))) is placed uniformly inside box k−1 and takes image π_k.
    Labels are the realized ring areas. `prob`: probability that a batch (sample, in sample
    mode) is mixed at all. Batch mode: one φ and one box chain per batch (the authors' slicing);
    sample mode: per-sample φ and boxes.
    """

    def draw(self, shape, generator=None, lam=None) -> dict:
        n, H, W, applied, phi, index, hs, ws = self._draw_common(shape, generator, lam)
        boxes = []
        py = torch.zeros(n, dtype=torch.long)
        px = torch.zeros(n, dtype=torch.long)
        ph = torch.full((n,), H, dtype=torch.long)
        pw = torch.full((n,), W, dtype=torch.long)
        for k in range(self.k - 1):
            h, w = hs[:, k], ws[:, k]
            py = py + randint(ph - h + 1, n, generator)
            px = px + randint(pw - w + 1, n, generator)
            boxes.append(torch.stack([py, py + h, px, px + w], dim=1))
            ph, pw = h, w
        return {"phi": phi, "applied": applied, "index": index, "bounds": torch.stack(boxes, 1)}

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

        if n == 1:
            x_mix = x.clone()
            for k in range(1, self.k):  # each paste lies inside the previous one
                paste_partner_boxes(x_mix, x, index[k], bounds[:, k - 1])
        else:
            owner = owner()
            x_mix = compose_owner(x, index, owner)

        # nested boxes: the realized ring areas, exactly the pixel counts of `owner`
        areas = (bounds[..., 1] - bounds[..., 0]) * (bounds[..., 3] - bounds[..., 2])
        full = torch.full((n, 1), H * W, dtype=torch.long)
        areas = torch.cat([full, areas, torch.zeros(n, 1, dtype=torch.long)], dim=1).double()
        shares = (areas[:, :-1] - areas[:, 1:]) / (H * W)
        return self._finish(x, y, num_classes, index, owner, x_mix, shares)


@register_mixer("saliency-dcutmix")
class SaliencyDCutMix(_KImageCut):
    """Saliency-DCutMix: DCutMix box sizes, but patch k is centred on the most salient pixel
    (spectral residual) of its source image π_k, pasted at that place, clipped; later patches
    cover earlier ones. Labels are the realized visible fractions. Batch mode places each patch
    by the saliency of the first sample's source (as SaliencyMix's code does)."""

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
        if n == 1:
            centres = salient_centres(gather_batch(x, index[1:, 0]))  # [K−1, 2]
            centres = centres.unsqueeze(0)  # [1, K−1, 2]
        else:
            sal = salient_centres(x)  # [B, 2]
            centres = torch.stack([sal.index_select(0, index[k]) for k in range(1, self.k)], dim=1)
        owner = torch.zeros(n, 1, H, W, dtype=torch.uint8, device=x.device)
        windows = []
        for k in range(1, self.k):  # later patches cover earlier ones
            c = centres[:, k - 1]
            h, w = sides[:, k - 1, 0], sides[:, k - 1, 1]
            bounds = centred_bounds(c[:, 0], c[:, 1], sides_dev[:, k - 1, 0], sides_dev[:, k - 1, 1], H, W)
            owner = owner.masked_fill(inside_box(bounds, H, W), k)
            windows.append((c[:, 0] - to_device(h // 2, x.device), c[:, 1] - to_device(w // 2, x.device), h, w))
        if n == 1:
            x_mix = x.clone()
            for k, (y0, x0, h, w) in enumerate(windows, start=1):
                paste_batch_window(x_mix, x, index[k], y0[0], x0[0], int(h[0]), int(w[0]))
        else:
            x_mix = compose_owner(x, index, owner)
        return self._finish(x, y, num_classes, index, owner, x_mix)
