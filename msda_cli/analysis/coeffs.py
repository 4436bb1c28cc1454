"""Regularization coefficients a_jk = E[(1 − M_j)(1 − M_k)] at fixed λ (unified-analysis paper §3–4).

M is the weight of x in the mix (`MixOutput.mask`), so 1 − M is the partner's weight; a_jk weighs
the product of input gradients ∂_j f ∂_k f in the paper's regularizer (eqs. 7–9). The paper's
Figure 4 shows the map A(dx, dy) = E_i a_{i, i+(dx, dy)}: the mean over the pixels i whose partner
i + (dx, dy) lies in the image. That set shrinks as the offset grows, so pixels near the border drop
out of the longer offsets and the map mixes the method with the border (GMix's whole-image map
shows four lobes from that alone); `interior=True` averages over the same pixels at every offset,
those at least max_offset inside (the CLI's default). Here

- `estimate_map` estimates A by Monte Carlo from the method's own sampler at fixed λ (one mask
  per sample, `mask_mode="sample"`, batches of draws), with a standard error per offset; the
  per-draw sums Σ_i u_i u_{i+d} of u = 1 − M come from one FFT autocorrelation per mask.
- `exact_map` gives A where it is known exactly:
    mixup (and the input-level Mixup of mixupe, manifold-mixup)   (1 − λ)²
    cutmix        enumeration over every centre of the usual clipped, centre-uniform box
                  (`cutmix_coefficients`); the box is a product of a row and a column interval
                  and the centre is uniform over the grid, so a_jk = P_H(j₁, k₁)·P_W(j₂, k₂)
    mixup-cutmix  q·(1 − λ)² + (1 − q)·cutmix
    hmix (fixed r) enumeration over every box centre (box area r(1 − λ), clipped; M = 0 in the
                  box and λ/cut outside), images up to 128 px
    gmix (λ ≥ 0.5) (s/2)·exp(−π‖j − k‖² / (2·s·H·W)), s = 1 − λ — the blob away from the border
                  only (METHODS.md); compare with `margin` > 0, since the border cuts the blob.
  The paper's eq. (10) is CutMix with an unclipped box placed fully inside the image: a
  different mask distribution near the border, not the one the samplers draw.

Methods without a two-image mask that depends on λ alone are refused (`NO_COEFFICIENTS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from msda_cli.checks import check_float, check_int
from msda_cli.errors import MsdaError

NO_COEFFICIENTS = {
    "vanilla": "does not mix images",
    "dmixup": "mixes K images (no two-image mask M)",
    "dcutmix": "mixes K images (no two-image mask M)",
    "saliency-dcutmix": "mixes K images (no two-image mask M)",
    "cutout": "does not mix (its label stays the sample's own and λ is not used)",
    "saliencymix": "places its box at the image's saliency peak, so its mask depends on the data, not on λ alone",
}
INPUT_MIXUP = {
    "mixupe": "mixupe mixes inputs as Mixup (its extra term is a loss, not a mask): a_jk = (1 − λ)²",
    "manifold-mixup": "manifold-mixup mixes hidden features; shown is its input-level Mixup mask: a_jk = (1 − λ)²",
}
HMIX_EXACT_MAX_SIZE = 128  # the enumeration costs one FFT per box centre (H·W of them)


# ---- offsets -------------------------------------------------------------------------------

def offset_grid(max_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) int arrays [2m+1, 2m+1]; entry [dy + m, dx + m] is the offset (dy, dx)."""
    d = np.arange(-max_offset, max_offset + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    return dy, dx


def distance_groups(max_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances [G], averaging matrix [(2m+1)², G]): column g averages the offsets with ‖p‖ = distances[g].

    Only lengths up to m: a longer one would average just the directions that fit in the square.
    """
    dy, dx = offset_grid(max_offset)
    sq = (dy ** 2 + dx ** 2).ravel()
    keys = np.unique(sq[sq <= max_offset ** 2])
    avg = np.zeros((sq.size, keys.size))
    inside = np.flatnonzero(sq <= max_offset ** 2)
    avg[inside, np.searchsorted(keys, sq[inside])] = 1.0
    avg /= avg.sum(0, keepdims=True)
    return np.sqrt(keys), avg


def lag_means(u: torch.Tensor, max_offset: int, interior: bool = False) -> torch.Tensor:
    """[n, 2m+1, 2m+1]: for each map u [n, h, w], the mean over i of u_i·u_{i+d}, |dy|, |dx| ≤ m.

    i runs over the pixels whose partner i + d lies in the map (a set that shrinks as d grows), or,
    with `interior`, over the same pixels for every d: those at least m from the border. One
    zero-padded FFT correlation per map (padding h + m keeps lags up to m from wrapping).
    """
    n, h, w = u.shape
    m = max_offset
    ph, pw = h + m, w + m
    spec = torch.fft.rfft2(u.double(), s=(ph, pw))
    if interior:
        v = torch.zeros_like(u, dtype=torch.float64)
        v[:, m:h - m, m:w - m] = u[:, m:h - m, m:w - m].double()
        corr = torch.fft.irfft2(torch.fft.rfft2(v, s=(ph, pw)).conj() * spec, s=(ph, pw))  # Σ_i v_i u_{i+d}
    else:
        corr = torch.fft.irfft2(spec.real ** 2 + spec.imag ** 2, s=(ph, pw))  # Σ_i u_i u_{i+d} at d mod (ph, pw)
    lags = torch.arange(-m, m + 1)
    corr = corr[:, lags % ph][:, :, lags % pw]
    dy, dx = offset_grid(m)
    if interior:
        count = torch.full(dy.shape, float((h - 2 * m) * (w - 2 * m)), dtype=torch.float64)
    else:
        count = torch.from_numpy(((h - np.abs(dy)) * (w - np.abs(dx))).astype(np.float64))
    return corr / count


# ---- Monte Carlo ---------------------------------------------------------------------------

@dataclass
class CoeffMap:
    """A(dy, dx) of one method at fixed λ; arrays indexed [dy + m, dx + m]."""

    method: str
    lam: float
    size: int
    max_offset: int
    margin: int
    draws: int
    interior: bool  # the same pixels (m or more inside the analysed area) at every offset
    estimate: np.ndarray
    se: np.ndarray  # Monte-Carlo standard error of each entry
    distances: np.ndarray  # [G] distinct offset lengths ‖p‖
    by_distance: np.ndarray  # [G] mean of `estimate` over the offsets of each length
    by_distance_se: np.ndarray
    exact: np.ndarray | None = None
    exact_by_distance: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """One row per offset distance: estimate, its standard error, the exact value, the difference."""
        out = []
        for g, d in enumerate(self.distances):
            exact = None if self.exact_by_distance is None else float(self.exact_by_distance[g])
            est = float(self.by_distance[g])
            out.append({"method": self.method, "lam": self.lam, "distance": round(float(d), 4), "estimate": est,
                        "se": float(self.by_distance_se[g]), "exact": exact,
                        "difference": None if exact is None else est - exact})
        return out


def coefficient_mixer(method: str, hparams: dict | None = None):
    """The method's mixer drawing one mask per sample, and a note (or None) on what it stands for."""
    from msda_cli.mixing import MIXERS, build_mixer, method_hparams

    MIXERS.lookup(method)  # unknown name -> MsdaError listing the valid ones
    if method in NO_COEFFICIENTS:
        raise MsdaError(f"method {method!r} {NO_COEFFICIENTS[method]}; a_jk needs a two-image mask M(λ)")
    hparams = dict(hparams or {})
    if "mask_mode" in hparams:
        raise MsdaError("mask_mode is not a setting here: a_jk is the same for both modes, masks are drawn per sample")
    if "mask_mode" in method_hparams(method):
        hparams["mask_mode"] = "sample"
    return build_mixer(method, **hparams), INPUT_MIXUP.get(method)


def check_geometry(size: int, max_offset: int, margin: int = 0, interior: bool = False) -> None:
    check_int("--size", size, min=2)
    check_int("--margin", margin, min=0, max=(size - 2) // 2, note=f"at least 2 of the {size} px analysed")
    inner = size - 2 * margin
    check_int("--max-offset", max_offset, min=0, max=inner - 1, note=f"the analysed width is {inner} px")
    if interior and inner - 2 * max_offset < 1:
        raise MsdaError(f"--max-offset {max_offset} leaves no interior pixel in {inner} px "
                        f"(at most {(inner - 1) // 2}, or --pixels valid)")


def check_lam(lam: float) -> float:
    return check_float("--lam", lam, min=0, max=1)


def estimate_map(method: str, lam: float, size: int = 32, draws: int = 4000, max_offset: int = 8, seed: int = 0,
                 hparams: dict | None = None, margin: int = 0, chunk: int = 256, interior: bool = False) -> CoeffMap:
    """Monte-Carlo A(dy, dx) of `method` at fixed λ on size×size images (pixels `margin` or more from the border;
    with `interior`, the same pixels for every offset, see `lag_means`)."""
    lam = check_lam(lam)
    check_geometry(size, max_offset, margin, interior)
    check_int("--draws", draws, min=2)
    mixer, note = coefficient_mixer(method, hparams)
    distances, avg = distance_groups(max_offset)
    avg_t = torch.from_numpy(avg)
    g = torch.Generator().manual_seed(int(seed))
    k = 2 * max_offset + 1
    s1, s2 = torch.zeros(k, k, dtype=torch.float64), torch.zeros(k, k, dtype=torch.float64)
    g1, g2 = torch.zeros(len(distances), dtype=torch.float64), torch.zeros(len(distances), dtype=torch.float64)
    done = 0
    while done < draws:
        b = min(chunk, draws - done)
        out = mixer(torch.zeros(b, 1, size, size), torch.zeros(b, dtype=torch.long), 2, generator=g, lam=lam)
        u = 1.0 - out.mask[:, 0].double()
        if margin:
            u = u[:, margin:size - margin, margin:size - margin]
        per = lag_means(u, max_offset, interior)  # [b, k, k]
        grouped = per.reshape(b, -1) @ avg_t
        s1 += per.sum(0)
        s2 += (per ** 2).sum(0)
        g1 += grouped.sum(0)
        g2 += (grouped ** 2).sum(0)
        done += b

    def mean_se(a, b):
        mean = a / draws
        var = (b / draws - mean ** 2).clamp_min(0.0) * draws / (draws - 1)
        return mean.numpy(), (var / draws).sqrt().numpy()

    estimate, se = mean_se(s1, s2)
    by_d, by_d_se = mean_se(g1, g2)
    result = CoeffMap(method, lam, size, max_offset, margin, draws, interior, estimate, se, distances, by_d, by_d_se,
                      notes=[note] if note else [])
    exact, exact_note = exact_map(method, lam, size, max_offset, hparams=hparams, margin=margin, interior=interior)
    if exact_note:
        result.notes.append(exact_note)
    if exact is not None:
        result.exact = exact
        result.exact_by_distance = exact.ravel() @ avg
    return result


# ---- exact values ---------------------------------------------------------------------------

def box_intervals(n: int, cut: int) -> np.ndarray:
    """[n, n] 0/1: row c marks the clipped interval [c − cut//2, c + (cut+1)//2) of a box centred at c."""
    c = np.arange(n)[:, None]
    t = np.arange(n)[None, :]
    return ((t >= c - cut // 2) & (t < c + (cut + 1) // 2)).astype(np.float64)


def box_side(n: int, area: float) -> int:
    """Integer side of a box covering `area` of the image (the samplers' `int(n·√area)`)."""
    return int(n * math.sqrt(min(max(area, 0.0), 1.0)))


def cutmix_profile(n: int, lam: float) -> np.ndarray:
    """P [n, n]: P[t, t'] = P(t and t' both in the box's interval), centre uniform over the n positions."""
    rows = box_intervals(n, box_side(n, 1.0 - lam))
    return rows.T @ rows / n


def cutmix_coefficients(lam: float, H: int, W: int) -> torch.Tensor:
    """a_jk [H·W, H·W] (float64, pixels in row-major order) of CutMix at fixed λ, exactly.

    Enumerates every centre of the usual box (sides int(H√(1−λ)) × int(W√(1−λ)), centre uniform
    over the pixels, clipped to the image): 1 − M is the box indicator, a product of a row
    interval and a column interval, and the centre's row and column are independent, so
    a_jk = P_H(j_row, k_row) · P_W(j_col, k_col).
    """
    return torch.from_numpy(np.kron(cutmix_profile(H, lam), cutmix_profile(W, lam)))


def _profile_lags(P: np.ndarray, max_offset: int, margin: int, interior: bool = False) -> np.ndarray:
    """[2m+1]: mean over t (margin <= t, t + d < n − margin) of P[t, t + d], d = −m … m; with `interior`,
    over the same t for every d (margin + m <= t < n − margin − m)."""
    n = P.shape[0]
    edge = margin + (max_offset if interior else 0)
    t = np.arange(edge, n - edge)
    out = []
    for d in range(-max_offset, max_offset + 1):
        ok = t[(t + d >= margin) & (t + d < n - margin)]
        out.append(P[ok, ok + d].mean())
    return np.array(out)


def cutmix_map(lam: float, size: int, max_offset: int, margin: int = 0, interior: bool = False) -> np.ndarray:
    """Exact A(dy, dx) of CutMix: separable, the product of the row and the column lag means."""
    lags = _profile_lags(cutmix_profile(size, lam), max_offset, margin, interior)
    return np.outer(lags, lags)


def hmix_map(lam: float, r: float, size: int, max_offset: int, margin: int = 0, chunk: int = 1024,
             interior: bool = False) -> np.ndarray:
    """Exact A(dy, dx) of HMix with fixed r: the mean over every box centre of that mask's lag means."""
    n = size
    rows = box_intervals(n, box_side(n, r * (1.0 - lam)))  # [n, n]: centre → indicator
    area = np.outer(rows.sum(1), rows.sum(1)).ravel()  # clipped area per centre (cy, cx)
    cut = 1.0 - area / (n * n)
    outside = np.where(cut > 0, np.clip(lam / np.maximum(cut, 1e-12), 0.0, 1.0), 0.0)
    rows_t = torch.from_numpy(rows)
    u_out = torch.from_numpy(1.0 - outside)  # 1 − M outside the box, per centre
    total = torch.zeros(2 * max_offset + 1, 2 * max_offset + 1, dtype=torch.float64)
    for start in range(0, n * n, chunk):
        centres = torch.arange(start, min(start + chunk, n * n))
        inside = rows_t[centres // n].unsqueeze(2) * rows_t[centres % n].unsqueeze(1)  # [c, n, n]
        u = inside + (1.0 - inside) * u_out[centres].view(-1, 1, 1)  # 1 − M
        if margin:
            u = u[:, margin:n - margin, margin:n - margin]
        total += lag_means(u, max_offset, interior).sum(0)
    return (total / (n * n)).numpy()


def exact_map(method: str, lam: float, size: int, max_offset: int, hparams: dict | None = None,
              margin: int = 0, interior: bool = False) -> tuple[np.ndarray | None, str | None]:
    """(A map or None, a note) for the methods with an exact or closed form (see the module docstring)."""
    from msda_cli.mixing import build_mixer

    hp = {k: v for k, v in (hparams or {}).items() if k != "mask_mode"}
    mixer = build_mixer(method, **hp)
    k = 2 * max_offset + 1
    if method in ("mixup", "mixupe", "manifold-mixup"):
        return np.full((k, k), (1.0 - lam) ** 2), None
    if method == "cutmix":
        return cutmix_map(lam, size, max_offset, margin, interior), None
    if method == "mixup-cutmix":
        q = mixer.q
        return q * (1.0 - lam) ** 2 + (1.0 - q) * cutmix_map(lam, size, max_offset, margin, interior), None
    if method == "hmix":
        if mixer.gamma is not None:
            return None, "hmix with r ~ Beta(γ, γ): no exact form here"
        if size > HMIX_EXACT_MAX_SIZE:
            return None, f"hmix: exact enumeration skipped above {HMIX_EXACT_MAX_SIZE} px"
        return hmix_map(lam, mixer.r, size, max_offset, margin, interior=interior), None
    if method == "gmix":
        if lam < 0.5:
            return None, "gmix: the closed form needs λ >= 0.5 (then 1 − M is the blob)"
        s = 1.0 - lam
        dy, dx = offset_grid(max_offset)
        closed = (s / 2) * np.exp(-math.pi * (dy ** 2 + dx ** 2) / (2 * s * size * size)) if s > 0 else np.zeros((k, k))
        return closed, ("gmix: the closed form holds away from the border; the border cuts the blob, "
                        "so the whole-image map is lower (use --margin to compare the interior)")
    return None, None


# ---- figure --------------------------------------------------------------------------------

def plot_maps(maps: list[CoeffMap], out, dpi: int | None = None) -> None:
    """One panel per method: the estimated A(dx, dy) (the paper's Figure 4) on one colour scale."""
    from msda_cli.mixing import MIXERS
    from msda_cli.plots import figure, integer_ticks

    low = min(float(cm.estimate.min()) for cm in maps)
    high = max(float(cm.estimate.max()) for cm in maps)
    first = maps[0]
    pixels = "same interior pixels at every offset" if first.interior else "all pixel pairs in the image"
    with figure(out, (2.3 * len(maps) + 0.8, 2.7), dpi) as fig:
        axes = fig.subplots(1, len(maps), squeeze=False)[0]
        for ax, cm in zip(axes, maps):
            m = cm.max_offset
            im = ax.imshow(cm.estimate, origin="lower", extent=(-m - 0.5, m + 0.5, -m - 0.5, m + 0.5),
                           vmin=low, vmax=high)
            ax.set_title(MIXERS.label(cm.method))
            ax.set_xlabel("dx (px)")
            integer_ticks(ax)
        axes[0].set_ylabel("dy (px)")
        fig.colorbar(im, ax=list(axes), fraction=0.046, pad=0.02, label="a(dx, dy)")
        margin = f", {first.margin} px margin" if first.margin else ""
        fig.suptitle(f"Coefficients $a_{{jk}}$ at λ = {first.lam:g} ({first.size}×{first.size} px{margin}; {pixels})")
