"""Box methods: CutMix, Stochastic Mixup & CutMix, Cutout, ResizeMix, SaliencyMix.

The label weight of each source is the realized pixel share of the mask (a clipped box
takes a smaller share than 1 − λ). In `mask_mode: batch` one box serves the whole batch and
is pasted by slicing (only the box region is gathered); in `sample` mode every sample has its
own box, built with arange comparisons on the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from msda_cli.checks import check_float
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import ImageMixer, MixOutput, lam_tensor, to_device
from msda_cli.mixing.masks import (
    box_sides,
    box_weights,
    centred_bounds,
    gather_like,
    inside_box,
    lerp_from_partner,
    outside_share,
    paste_boxes,
)
from msda_cli.mixing.mixup import mixup_blend
from msda_cli.mixing.sampling import randint, uniform


def draw_centred_boxes(area: torch.Tensor, H: int, W: int, generator) -> torch.Tensor:
    """Boxes covering `area` (float64 [n]) of the image, centre uniform over the pixels, clipped."""
    n = area.shape[0]
    cut_h, cut_w = box_sides(H, W, area)
    cy = randint(H, n, generator)
    cx = randint(W, n, generator)
    return centred_bounds(cy, cx, cut_h, cut_w, H, W)


def cut_paste(x: torch.Tensor, partner_index: torch.Tensor, bounds: torch.Tensor):
    """Paste the partner's box(es) into a copy of x. bounds: CPU [n, 4].

    Returns (mixed, M) with M = weight of x as a lazy [n,1,H,W] mask (built on first access).
    """
    H, W = x.shape[-2:]
    perm = to_device(partner_index, x.device)
    if bounds.shape[0] == 1:
        out = paste_boxes(x, [(perm, bounds[0])])
    else:  # each sample's own box: weight of x = 0 in the box, 1 outside
        keep = box_weights(to_device(bounds, x.device), H, W, x.dtype, inside=0.0).unsqueeze(1)
        out = lerp_from_partner(x, perm, keep)
    return out, lambda: (~inside_box(to_device(bounds, x.device), H, W)).float()


@register_mixer("cutmix", label="CutMix")
class CutMix(ImageMixer):
    """CutMix (Yun et al., 2019): λ ~ Beta(α, α); a box of area (1 − λ)·H·W, centre uniform, clipped.

    `prob`: the probability that a batch is mixed at all (the CutMix code's `cutmix_prob`, one coin
    per batch); a batch not mixed gets an empty box, so it keeps its images and one-hot targets. The
    coin is drawn only when `prob` < 1 (runs at 1 draw as before), and not for a fixed `lam`.
    """

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mask_mode: str = "batch", smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.prob = check_float("prob", prob, min=0, max=1)

    def draw(self, shape, generator=None, lam=None) -> dict:
        params = self.draw_pair(self.alpha, shape[0], generator, lam)
        if lam is None and self.prob < 1 and not bool(torch.rand(1, generator=generator, dtype=torch.float64)
                                                       < self.prob):
            params["lam"] = torch.ones_like(params["lam"])  # not mixed: a box of area 0
        params["bounds"] = draw_centred_boxes(1.0 - params["lam"], shape[-2], shape[-1], generator)
        return params

    def apply(self, x, y, num_classes, params) -> MixOutput:
        x_mix, mask = cut_paste(x, params["index"][1], params["bounds"])
        realized = outside_share(params["bounds"], *x.shape[-2:])
        return self.finish(x, y, num_classes, params["index"], x_mix, mask, realized)


@register_mixer("mixup-cutmix", label="Stochastic Mixup & CutMix")
class MixupCutMix(ImageMixer):
    """Stochastic Mixup & CutMix: Mixup (α = `alpha`) with probability `q`, else CutMix (`cutmix_alpha`)."""

    def __init__(self, alpha: float = 1.0, cutmix_alpha: float = 1.0, q: float = 0.5, mask_mode: str = "batch",
                 smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.cutmix_alpha = check_float("cutmix_alpha", cutmix_alpha, min=0, open="min")
        self.q = check_float("q", q, min=0, max=1)

    def draw(self, shape, generator=None, lam=None) -> dict:
        B, H, W = shape[0], shape[-2], shape[-1]
        n = self.num_masks(B)
        use_mixup = torch.rand(n, generator=generator, dtype=torch.float64) < self.q
        lam_mixup = self.draw_lam(self.alpha, n, generator, lam)
        lam_cutmix = self.draw_lam(self.cutmix_alpha, n, generator, lam)
        perm = torch.randperm(B, generator=generator)
        bounds = draw_centred_boxes(torch.where(use_mixup, 0.0, 1.0 - lam_cutmix), H, W, generator)
        return {"lam": torch.where(use_mixup, lam_mixup, lam_cutmix), "use_mixup": use_mixup,
                "index": torch.stack([torch.arange(B), perm]), "bounds": bounds}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        index, use_mixup, bounds, lam = params["index"], params["use_mixup"], params["bounds"], params["lam"]
        H, W = x.shape[-2:]
        if use_mixup.shape[0] == 1 and bool(use_mixup[0]):  # one choice for the whole batch: Mixup
            x_mix, w = mixup_blend(x, index[1], lam)
            return self.finish(x, y, num_classes, index, x_mix, w.expand(1, 1, H, W), realized=lam)
        if not bool(use_mixup.any()):  # CutMix for every mask
            x_mix, mask = cut_paste(x, index[1], bounds)
            return self.finish(x, y, num_classes, index, x_mix, mask, outside_share(bounds, H, W))
        # per sample: Mixup weight where chosen (its box is empty), weight 1 + the box elsewhere;
        # M = w outside the box, 0 inside, blended in one lerp
        w = torch.where(use_mixup, lam, torch.ones_like(lam))
        perm = to_device(index[1], x.device)
        keep = box_weights(to_device(bounds, x.device), H, W, x.dtype, inside=0.0).unsqueeze(1)
        x_mix = lerp_from_partner(x, perm, keep.mul_(to_device(w, x.device, x.dtype).view(-1, 1, 1, 1)))

        def mask():
            inside = inside_box(to_device(bounds, x.device), H, W)
            return torch.where(to_device(use_mixup, x.device).view(-1, 1, 1, 1),
                               to_device(lam, x.device, torch.float32).view(-1, 1, 1, 1), (~inside).float())

        realized = torch.where(use_mixup, lam, outside_share(bounds, H, W))
        return self.finish(x, y, num_classes, index, x_mix, mask, realized)


@register_mixer("cutout", label="Cutout")
class Cutout(ImageMixer):
    """Cutout (DeVries & Taylor, 2017): a square of side `size`·H × `size`·W set to 0, centre
    uniform, clipped. Not a mixing method: the label stays the sample's own (`lam` = 1) and
    `mask` is the kept-pixel mask. The original code cuts one box per image: `mask_mode: sample`
    is the default here.
    """

    def __init__(self, size: float = 0.5, mask_mode: str = "sample", smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.size = check_float("size", size, min=0, max=1)

    def draw(self, shape, generator=None, lam=None) -> dict:
        B, H, W = shape[0], shape[-2], shape[-1]
        n = self.num_masks(B)
        area = torch.full((n,), self.size ** 2, dtype=torch.float64)
        return {"index": torch.stack([torch.arange(B), torch.arange(B)]),
                "bounds": draw_centred_boxes(area, H, W, generator)}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        H, W = x.shape[-2:]
        bounds = params["bounds"]
        if bounds.shape[0] == 1:
            y0, y1, x0, x1 = (int(v) for v in bounds[0])
            x_mix = x.clone()
            x_mix[:, :, y0:y1, x0:x1] = 0
        else:
            # x times a 0/1 mask: the kernel of `masked_fill` is several times slower on the CPU
            x_mix = x * box_weights(to_device(bounds, x.device), H, W, x.dtype, inside=0.0).unsqueeze(1)
        own = torch.ones(1, device=x.device)
        mask = lambda: (~inside_box(to_device(bounds, x.device), H, W)).float()  # noqa: E731
        return self.finish(x, y, num_classes, params["index"], x_mix, mask, own_weight=own)


@register_mixer("resizemix", label="ResizeMix")
class ResizeMix(ImageMixer):
    """ResizeMix (Qin et al., 2020): the partner image, shrunk to scale τ ~ U(`scale_min`, `scale_max`),
    is pasted at a uniform position fully inside x; label weight = realized pasted area.
    `lam` fixes τ = √(1 − λ). Batch mode resizes with `shrink_bilinear` (bilinear); sample mode
    resamples every sample's own box size with `grid_sample` (same bilinear convention).
    """

    def __init__(self, scale_min: float = 0.1, scale_max: float = 0.8, mask_mode: str = "batch",
                 smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.scale_min = check_float("scale_min", scale_min, min=0, max=1)
        self.scale_max = check_float("scale_max", scale_max, min=0, max=1)
        if self.scale_min > self.scale_max:
            from msda_cli.errors import MsdaError

            raise MsdaError(f"scale_min ({scale_min}) must not exceed scale_max ({scale_max})")

    def draw(self, shape, generator=None, lam=None) -> dict:
        B, H, W = shape[0], shape[-2], shape[-1]
        n = self.num_masks(B)
        if lam is None:
            tau = uniform(self.scale_min, self.scale_max, n, generator)
        else:
            tau = torch.sqrt(1.0 - lam_tensor(lam, n))
        perm = torch.randperm(B, generator=generator)
        h = (tau * H).round().long().clamp(0, H)
        w = (tau * W).round().long().clamp(0, W)
        y0 = randint(H - h + 1, n, generator)
        x0 = randint(W - w + 1, n, generator)
        bounds = torch.stack([y0, y0 + h, x0, x0 + w], dim=1)
        return {"index": torch.stack([torch.arange(B), perm]), "bounds": bounds}

    def apply(self, x, y, num_classes, params) -> MixOutput:
        B, C, H, W = x.shape
        index, bounds = params["index"], params["bounds"]
        perm = to_device(index[1], x.device)
        if bounds.shape[0] == 1:
            x_mix = x.clone()
            y0, y1, x0, x1 = (int(v) for v in bounds[0])
            if y1 > y0 and x1 > x0:
                small = shrink_bilinear(x, y1 - y0, x1 - x0)
                x_mix[:, :, y0:y1, x0:x1] = small.index_select(0, perm).to(x.dtype)
        else:
            x_mix = paste_resized(x, x, perm, bounds)
        mask = lambda: (~inside_box(to_device(bounds, x.device), H, W)).float()  # noqa: E731
        return self.finish(x, y, num_classes, index, x_mix, mask, outside_share(bounds, H, W))


def shrink_bilinear(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """`F.interpolate(x, (h, w), mode="bilinear", align_corners=False)` as two 1-D linear passes
    (along W on the contiguous rows, then along H): the same weights, equal up to float rounding,
    and 1.5–2× faster on the CPU, where the 2-D kernel on NCHW batches is not vectorized."""
    B, C, H, W = x.shape
    rows = F.interpolate(x.reshape(B * C, H, W), size=w, mode="linear", align_corners=False)  # [BC, H, w]
    both = F.interpolate(rows.transpose(1, 2), size=h, mode="linear", align_corners=False)  # [BC, w, h]
    return both.transpose(1, 2).reshape(B, C, h, w)


def paste_resized(out: torch.Tensor, x: torch.Tensor, perm: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Per sample: x[perm[b]] shrunk into box b (bilinear, align_corners=False, the F.interpolate
    convention) with one affine `grid_sample` over the batch; bounds: CPU [B, 4]. Returns the mix."""
    B, C, H, W = out.shape
    b = bounds.double()
    h = (b[:, 1] - b[:, 0]).clamp_min(1.0)
    w = (b[:, 3] - b[:, 2]).clamp_min(1.0)
    # output coordinate u (normalized, align_corners=False) -> coordinate in the partner
    theta = torch.zeros(B, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = W / w
    theta[:, 0, 2] = W / w - 2.0 * b[:, 2] / w - 1.0
    theta[:, 1, 1] = H / h
    theta[:, 1, 2] = H / h - 2.0 * b[:, 0] / h - 1.0
    grid = F.affine_grid(to_device(theta, out.device, torch.float32), [B, C, H, W], align_corners=False)
    resized = F.grid_sample(gather_like(x, perm).float(), grid, mode="bilinear", padding_mode="border",
                            align_corners=False).to(out.dtype)
    keep = box_weights(to_device(bounds, out.device), H, W, out.dtype, inside=0.0).unsqueeze(1)
    return resized.lerp_(out, keep)  # out outside the box, the resized partner inside


@register_mixer("saliencymix", label="SaliencyMix")
class SaliencyMix(ImageMixer):
    """SaliencyMix (Uddin et al., 2021): a CutMix box (area 1 − λ, λ ~ Beta(α, α)) centred on the
    most salient pixel of the partner (spectral residual), pasted at the same place, clipped.
    Batch mode follows the authors' code: the box comes from the first partner's saliency.
    """

    def __init__(self, alpha: float = 1.0, mask_mode: str = "batch", smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")

    def draw(self, shape, generator=None, lam=None) -> dict:
        params = self.draw_pair(self.alpha, shape[0], generator, lam)
        cut_h, cut_w = box_sides(shape[-2], shape[-1], 1.0 - params["lam"])
        params["sides"] = torch.stack([cut_h, cut_w], 1)
        return params

    def apply(self, x, y, num_classes, params) -> MixOutput:
        from msda_cli.mixing.saliency import salient_centres

        H, W = x.shape[-2:]
        index, sides = params["index"], params["sides"]
        perm = to_device(index[1], x.device)
        n = sides.shape[0]
        if n == 1:  # the first partner's saliency places the box for the whole batch
            centres = salient_centres(gather_like(x, perm[:1]))
        else:
            centres = salient_centres(x).index_select(0, perm)
        sides_dev = to_device(sides, x.device)
        bounds = centred_bounds(centres[:, 0], centres[:, 1], sides_dev[:, 0], sides_dev[:, 1], H, W)
        # the box lies on the device (no host sync to read it): a 0/1 mask, one gather and one lerp
        x_mix = lerp_from_partner(x, perm, box_weights(bounds, H, W, x.dtype, inside=0.0).unsqueeze(1))
        mask = lambda: (~inside_box(bounds, H, W)).float()  # noqa: E731
        return self.finish(x, y, num_classes, index, x_mix, mask, outside_share(bounds, H, W))
