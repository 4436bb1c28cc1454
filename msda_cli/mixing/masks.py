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


def gather_batch(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] along the batch dimension."""
    return x.index_select(0, index)


def paste_batch_box(out: torch.Tensor, src: torch.Tensor, index: torch.Tensor, box) -> None:
    """In place: out[:, :, box] = src[index][:, :, box] for one box (CPU ints) shared by the batch.

    Only the box region is gathered, so this costs about what timm's batch CutMix costs.
    """
    y0, y1, x0, x1 = (int(v) for v in box)
    if y1 > y0 and x1 > x0:
        out[:, :, y0:y1, x0:x1] = src[:, :, y0:y1, x0:x1].index_select(0, index)


def paste_batch_window(out: torch.Tensor, src: torch.Tensor, index: torch.Tensor, y0, x0, h: int, w: int,
                       ) -> None:
    """In place paste of a box whose size (h, w) is known on the CPU but whose *unclipped* corner
    (y0, x0: 0-d tensors) was computed on the device (saliency peaks).

    On the CPU the corner is read and the box sliced. On an accelerator there is no host sync:
    the row/column indices are clamped into the image and pasted by advanced indexing; clamped
    duplicates copy a pixel onto itself, so the pasted set is exactly the clipped box.
    """
    if h <= 0 or w <= 0:
        return
    H, W = out.shape[-2:]
    if out.device.type == "cpu":
        y0, x0 = int(y0), int(x0)
        box = (max(y0, 0), min(y0 + h, H), max(x0, 0), min(x0 + w, W))
        paste_batch_box(out, src, index, box)
        return
    rows = (y0 + torch.arange(h, device=out.device)).clamp(0, H - 1)
    cols = (x0 + torch.arange(w, device=out.device)).clamp(0, W - 1)
    patch = src[:, :, rows[:, None], cols[None, :]].index_select(0, index)
    out[:, :, rows[:, None], cols[None, :]] = patch


def blend(x: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """M⊙x + (1−M)⊙partner as one lerp; exact for M ∈ {0, 1}. mask [n,1,H,W] broadcasts over C."""
    return torch.lerp(partner, x, mask.to(x.dtype))


def owner_shares(owner: torch.Tensor, K: int) -> torch.Tensor:
    """Realized pixel share of each source: owner (integer) [n,1,H,W] -> float32 [n, K]."""
    flat = owner.flatten(1)
    counts = torch.stack([(flat == k).sum(1, dtype=torch.float64) for k in range(K)], dim=1)
    return (counts / flat.shape[1]).float()


def paste_partner_boxes(out: torch.Tensor, src: torch.Tensor, index: torch.Tensor | None,
                        bounds: torch.Tensor) -> torch.Tensor:
    """Paste box(es) of src[index] (index None: of src itself) into `out`.

    bounds: CPU [n, 4]; n = 1 pastes one box for the whole batch by slicing (in place), n = B
    selects each sample's box with a broadcast mask (`torch.where`: on the CPU this beats
    scattering only the box pixels, whose integer index arithmetic is not vectorized). Returns
    the result.
    """
    H, W = out.shape[-2:]
    if bounds.shape[0] == 1:
        if index is None:
            y0, y1, x0, x1 = (int(v) for v in bounds[0])
            out[:, :, y0:y1, x0:x1] = src[:, :, y0:y1, x0:x1]
        else:
            paste_batch_box(out, src, index, bounds[0])
        return out
    inside = inside_box(to_device(bounds, out.device), H, W)
    partner = src if index is None else gather_batch(src, index)
    return torch.where(inside, partner, out)


def compose_owner(x: torch.Tensor, index: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """Pixel (b, p) from image index[owner[b, p], b], in one gather over the batch dimension.

    index [K, B] and owner (integer) [n, 1, H, W] on x's device; n = 1 or B.
    """
    B, C, H, W = x.shape
    own = owner.reshape(owner.shape[0], H * W).long().expand(B, -1)
    src = index.T.gather(1, own).view(B, 1, H, W)
    return torch.gather(x, 0, src.expand(B, C, H, W))


def to_device(t: torch.Tensor, device, dtype=None) -> torch.Tensor:
    return t.to(device=device, dtype=dtype, non_blocking=True)
