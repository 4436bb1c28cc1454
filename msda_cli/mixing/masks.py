"""Box geometry and blending helpers shared by the mask methods.

Box convention (the one timm and the CutMix authors use): a box of integer sides
`cut_h = int(H·ratio)`, `cut_w = int(W·ratio)` around an integer centre (cy, cx) spans rows
[cy − cut_h//2, cy + (cut_h+1)//2) clipped to the image, columns likewise.
"""

from __future__ import annotations

import torch


def box_sides(H: int, W: int, area: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer sides of a box covering fraction `area` (float64 [n]) of an H×W image."""
    ratio = torch.sqrt(area.clamp(0.0, 1.0))
    return (H * ratio).long(), (W * ratio).long()


def centred_bounds(cy, cx, cut_h, cut_w, H: int, W: int) -> torch.Tensor:
    """[n, 4] long (y0, y1, x0, x1) of boxes centred at (cy, cx), clipped to the image.

    Works on CPU draws or on device tensors (saliency centres) alike.
    """
    y0 = (cy - cut_h // 2).clamp(0, H)
    y1 = (cy + (cut_h + 1) // 2).clamp(0, H)
    x0 = (cx - cut_w // 2).clamp(0, W)
    x1 = (cx + (cut_w + 1) // 2).clamp(0, W)
    return torch.stack([y0, y1, x0, x1], dim=1)


def box_area(bounds: torch.Tensor) -> torch.Tensor:
    return (bounds[:, 1] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 2])


_ARANGES: dict = {}


def cached_arange(n: int, device) -> torch.Tensor:
    """arange(n) (long) on `device`, built once per (n, device). Callers must not modify it."""
    key = (n, torch.device(device))
    t = _ARANGES.get(key)
    if t is None:
        t = _ARANGES[key] = torch.arange(n, device=key[1])
    return t


def box_profiles(bounds: torch.Tensor, H: int, W: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indicators of boxes `bounds` [..., 4] (y0 <= y1, x0 <= x1) on their device:
    ([..., H], [..., W]) in `dtype`, 1 inside the box's rows (columns), else 0.

    One comparison of the four bounds against one cached arange, then (p >= lo) − (p >= hi).
    """
    L = max(H, W)
    ge = (cached_arange(L, bounds.device) >= bounds.unsqueeze(-1)).to(dtype)  # [..., 4, L]
    return ge[..., 0, :H] - ge[..., 1, :H], ge[..., 2, :W] - ge[..., 3, :W]


def box_weights(bounds: torch.Tensor, H: int, W: int, dtype, inside: float) -> torch.Tensor:
    """[..., H, W] in `dtype`: `inside` (0 or 1) in each box, 1 − `inside` elsewhere. Exact 0/1 values."""
    rows, cols = box_profiles(bounds, H, W, dtype)
    if inside:
        return rows.unsqueeze(-1) * cols.unsqueeze(-2)
    # outside = outside the rows or outside the columns: one full-size op on the small profiles
    return torch.maximum(1.0 - rows.unsqueeze(-1), 1.0 - cols.unsqueeze(-2))


def lerp_from_partner(x: torch.Tensor, partner_index: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """x[partner_index] where keep = 0, x where keep = 1: one gather and one in-place lerp.

    `keep` [n,1,H,W] in x's dtype with exact 0/1 entries (or any weight: then it is M⊙x + (1−M)⊙partner
    as `torch.lerp(partner, x, M)` computes it). lerp with weight 0 or 1 returns its start or end
    bitwise for finite inputs (a NaN/inf pixel would leak into the other image's region, where
    `torch.where` would not take it). On the CPU this is several times cheaper than `torch.where`
    (whose kernel is not vectorized) and allocates one batch, not two.
    """
    out = gather_like(x, partner_index)
    return out.lerp_(x, keep)


def gather_like(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] along the batch dimension, in x's memory format (channels_last stays channels_last)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        out = torch.empty((index.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last)
        return torch.index_select(x, 0, index, out=out)
    return x.index_select(0, index)


def large_box_share(W: int) -> float:
    """A first box covering at least this share of the image is pasted by a masked lerp, not by
    slicing. Measured on the CPU, clone + slice against gather + lerp: they cross between 0.2 and
    0.3 of a 32-pixel-wide image (short rows make slicing dear), between 0.5 and 0.7 of a
    224-pixel-wide one."""
    return 0.3 if W < 128 else 0.55


def paste_boxes(x: torch.Tensor, pastes) -> torch.Tensor:
    """x with boxes of other images pasted in order (later ones on top): one box per paste shared by
    the whole batch. `pastes`: (index [B] on x's device, (y0, y1, x0, x1) CPU ints or tensor) pairs;
    box b of paste k takes x[index[b]]. Returns a new tensor (x is not modified).

    A box is copied by slicing (only the box region is gathered, as timm does), into a clone of x.
    Slicing a strided box costs more per pixel than a contiguous pass, so when the *first* box is
    large the clone is skipped instead: the whole partner batch is gathered and x blended back outside
    the box with one in-place `lerp_` (exact for 0/1 weights). Later boxes are always sliced: with
    the output already there, that is never slower than a full gather and blend (measured).
    """
    H, W = x.shape[-2:]
    out = None
    for index, box in pastes:
        y0, y1, x0, x1 = (int(v) for v in box)
        if y1 <= y0 or x1 <= x0:
            continue
        if out is None and (y1 - y0) * (x1 - x0) >= large_box_share(W) * H * W:
            keep = x.new_ones((1, 1, H, W))
            keep[..., y0:y1, x0:x1] = 0
            out = lerp_from_partner(x, index, keep)
            continue
        if out is None:
            out = x.clone()
        out[:, :, y0:y1, x0:x1] = x[:, :, y0:y1, x0:x1].index_select(0, index)
    return x.clone() if out is None else out


def inside_box(bounds: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """bool [n, 1, H, W]: True inside each box. `bounds` [n, 4] on the target device.

    Separable: one comparison pair per row and per column, then one broadcast AND.
    """
    rows = torch.arange(H, device=bounds.device).view(1, H)
    cols = torch.arange(W, device=bounds.device).view(1, W)
    in_rows = (rows >= bounds[:, 0:1]) & (rows < bounds[:, 1:2])
    in_cols = (cols >= bounds[:, 2:3]) & (cols < bounds[:, 3:4])
    return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)


def outside_share(bounds: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """1 − (box area)/(H·W) in float64: the exact mean of the outside-the-box indicator."""
    return 1.0 - box_area(bounds).double() / (H * W)


def blend(x: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """M⊙x + (1−M)⊙partner as one lerp; exact for M ∈ {0, 1}. mask [n,1,H,W] broadcasts over C."""
    return torch.lerp(partner, x, mask.to(x.dtype))


def owner_shares(owner: torch.Tensor, K: int) -> torch.Tensor:
    """Realized pixel share of each source: owner (integer) [n,1,H,W] -> float32 [n, K]."""
    flat = owner.flatten(1)
    counts = torch.stack([(flat == k).sum(1, dtype=torch.float64) for k in range(K)], dim=1)
    return (counts / flat.shape[1]).float()


