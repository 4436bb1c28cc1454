"""FMix (Harris et al., 2020): a binary mask from thresholded low-frequency noise.

A random complex spectrum scaled by 1 / f^δ (`decay_power`) is inverted to a smooth grey
image; its top ⌈λ·H·W⌉ or ⌊λ·H·W⌋ pixels (λ ~ Beta(α, α); up or down with probability ½, as
the authors' code) take x, the rest the partner. The mask holds exactly that many pixels, and
the label is its realized mean. The spectrum noise is O(H·W) numbers per mask, drawn on the
CPU with the generator like every other draw.
"""

from __future__ import annotations

import numpy as np
import torch

from msda_cli.checks import check_float
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import ImageMixer, MixOutput, to_device
from msda_cli.mixing.masks import blend, gather_like


def low_freq_images(noise: torch.Tensor, H: int, W: int, decay_power: float) -> torch.Tensor:
    """[n, H, W] smooth images from noise [n, 2, H, W//2+1] (real and imaginary parts)."""
    fy = torch.fft.fftfreq(H, device=noise.device).view(H, 1)
    fx = torch.fft.rfftfreq(W, device=noise.device).view(1, -1)
    freq = torch.sqrt(fy ** 2 + fx ** 2)
    scale = 1.0 / freq.clamp_min(1.0 / max(H, W)) ** decay_power
    spectrum = torch.complex(noise[:, 0], noise[:, 1]) * scale
    return torch.fft.irfft2(spectrum, s=(H, W))


def top_fraction_mask(images: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """bool [n,1,H,W]: True on the `count` [n] largest pixels of each image, exactly that many.

    The count-th largest value of each image is the threshold; pixels above it are in, and of the
    pixels equal to it the first ones in raster order fill the count (ties are rare but possible
    in float32, and the label is the count). Only the values are sorted.
    """
    n, H, W = images.shape
    flat = images.flatten(1)
    if flat.device.type == "cpu":  # NumPy's sort: 128 masks in 2 ms, not 6; a digits-cnn step 5–8 % faster
        ordered = torch.from_numpy(np.sort(flat.detach().numpy(), axis=1)[:, ::-1].copy())
    else:
        ordered = flat.sort(dim=1, descending=True).values
    count = count.long().view(n, 1)
    threshold = ordered.gather(1, (count - 1).clamp_min(0))
    at_least = flat >= threshold
    above = flat > threshold
    tied = at_least ^ above
    need = count - above.sum(1, keepdim=True)  # ≥ 1 when count ≥ 1; 0 when count = 0
    return (above | (tied & (tied.cumsum(1) <= need))).view(n, 1, H, W)


@register_mixer("fmix", label="FMix")
class FMix(ImageMixer):
    """FMix: `alpha` (Beta(α, α) for λ), `decay_power` δ (3 in the paper)."""

    def __init__(self, alpha: float = 1.0, decay_power: float = 3.0, mask_mode: str = "batch",
                 smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.decay_power = check_float("decay_power", decay_power, min=0, open="min")

    def draw(self, shape, generator=None, lam=None) -> dict:
        H, W = shape[-2], shape[-1]
        params = self.draw_pair(self.alpha, shape[0], generator, lam)
        n = len(params["lam"])
        params["noise"] = torch.randn(n, 2, H, W // 2 + 1, generator=generator)
        # pixels that keep x: ⌈λ·H·W⌉ or ⌊λ·H·W⌋ with probability ½ each (the authors' code)
        exact = params["lam"] * (H * W)
        exact = torch.where((exact - exact.round()).abs() < 1e-9, exact.round(), exact)  # 0.07·100 is 7
        up = torch.rand(n, generator=generator, dtype=torch.float64) > 0.5
        params["count"] = torch.where(up, torch.ceil(exact), torch.floor(exact))
        return params

    def apply(self, x, y, num_classes, params) -> MixOutput:
        H, W = x.shape[-2:]
        images = low_freq_images(to_device(params["noise"], x.device), H, W, self.decay_power)
        count = params["count"]
        mask = top_fraction_mask(images, to_device(count, x.device)).float()
        partner = gather_like(x, to_device(params["index"][1], x.device))
        return self.finish(x, y, num_classes, params["index"], blend(x, partner, mask), mask, count / (H * W))
