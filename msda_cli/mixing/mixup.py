"""Mixup (Zhang et al., 2018): x̃ = λx + (1−λ)x[π], ỹ = λy + (1−λ)y[π], λ ~ Beta(α, α).

Works on images [B, C, H, W] and on tabular rows [B, D]. `mask_mode: batch` (the authors'
code) draws one λ per batch, `sample` one per sample. A model with a `representation()` (GIN's graph
readout) is mixed there instead (mixing/hidden.py).
"""

from __future__ import annotations

import torch

from msda_cli.checks import check_float
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import LossOutput, MixOutput, TwoImageMixer, soft_cross_entropy, to_device
from msda_cli.mixing.hidden import batch_size, mixed_forward, mixed_target, representation_layer
from msda_cli.mixing.masks import gather_like


def mixup_blend(x: torch.Tensor, partner_index: torch.Tensor, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend with λ [n] (CPU float64); returns the mixed batch and M (λ broadcast, [n,1,...])."""
    w = to_device(lam, x.device, torch.float32).view(-1, *([1] * (x.dim() - 1)))
    partner = gather_like(x, to_device(partner_index, x.device))
    return torch.lerp(partner, x, w.to(x.dtype)), w


@register_mixer("mixup", label="Mixup")
class Mixup(TwoImageMixer):
    def __init__(self, alpha: float = 1.0, mask_mode: str = "batch", smoothing: float = 0.0):
        super().__init__(mask_mode, smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")

    def draw(self, shape, generator=None, lam=None) -> dict:
        return self.draw_pair(self.alpha, shape[0], generator, lam)

    def apply(self, x, y, num_classes, params) -> MixOutput:
        index = params["index"]
        x_mix, w = mixup_blend(x, index[1], params["lam"])
        mask = w.expand(w.shape[0], 1, *x.shape[2:]) if x.dim() == 4 else w.view(-1, 1)
        return self.finish(x, y, num_classes, index, x_mix, mask, realized=params["lam"])

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        """At the input, or at the model's `representation()` where it has one (mixing/hidden.py)."""
        layer = representation_layer(model)
        if layer is None:
            return super().loss(model, x, y, num_classes, generator=generator)
        params = self.draw((batch_size(x, y),), generator=generator)
        logits, _ = mixed_forward(model, layer, x, params, clean=False)
        return LossOutput(soft_cross_entropy(logits, mixed_target(y, num_classes, self.smoothing, params)), logits)
