"""MixupE (Zou et al., "MixupE: Understanding and Improving Mixup from Directional Derivative
Perspective"): Mixup plus an explicit first-order directional-derivative term.

With clean logits f(x_i), p = softmax(f) and one-hot y_i: q̂(x_i) = (y_i − p_i)ᵀ f(x_i).

- `variant: paper` (eq. 7–9): R = E[1−λ'] · mean_i |q̂(x_i)|, E[1−λ'] = 1 − (α+1)/(2α+1) for
  Beta(α, α); loss = η̂ · (L_mix + η·R), η̂ = |L_mix| / |L_mix + η·R| detached, so the loss
  value equals L_mix while its gradient carries η·R.
- `variant: code` (the authors' released code, version 3): loss = L_mix − η·E[1−λ']·Σ_{q̂_i<τ} q̂_i / B
  with τ = 1 and q̂ not detached.

`erm: true` is the ablation of the paper's Table 7, "ERM + additional loss": the same extra
term added to the plain cross-entropy of the unmixed batch (one forward pass; α still sets
E[1−λ']).

The clean forward is batched with the mixed one: one forward over torch.cat([x̃, x]); the paper
states 1.3× Mixup's step (on a GPU; on the CPU, where the second half of the batch costs as much
as the first, 2.2–2.5×: benchmarks/bench_step.py). Note that BatchNorm layers therefore see the concatenated batch
(mixed and clean samples together) in their batch statistics. `LossOutput.value` is the Mixup
loss L_mix (what is logged). A model with a `representation()` (GIN's graph readout) is mixed there, its
clean and mixed representations in one forward (mixing/hidden.py).
"""

from __future__ import annotations

import torch

from msda_cli.checks import check_choice, check_float
from msda_cli.errors import MsdaError
from msda_cli.mixing import MIXERS, register_mixer
from msda_cli.mixing.base import LossOutput, MixOutput, one_hot, soft_cross_entropy
from msda_cli.mixing.hidden import batch_size, mixed_forward, mixed_target, representation_layer
from msda_cli.mixing.mixup import Mixup

CODE_THRESHOLD = 1.0  # τ in the authors' code


def expected_one_minus_lam(alpha: float) -> float:
    """E[1 − λ'] for λ' from the Beta(α, α) mixture D_λ: 1 − (α+1)/(2α+1)."""
    return 1.0 - (alpha + 1.0) / (2.0 * alpha + 1.0)


def q_hat(clean_logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """q̂(x_i) = (y_i − softmax(f_i))ᵀ f_i, per sample [B] (float32, differentiable)."""
    f = clean_logits.float()
    target = one_hot(y, num_classes).to(f.device)
    return ((target - torch.softmax(f, dim=-1)) * f).sum(dim=-1)


@register_mixer("mixupe", label="MixupE")
class MixupE(Mixup):
    """MixupE: `alpha` (Mixup's Beta(α, α)), `eta` (η, 0.001), `variant` (paper | code), `erm`
    (Table 7's ablation: the extra term on the unmixed batch)."""

    def __init__(self, alpha: float = 1.0, eta: float = 0.001, variant: str = "paper", mask_mode: str = "batch",
                 smoothing: float = 0.0, erm: bool = False):
        super().__init__(alpha, mask_mode, smoothing)
        self.eta = check_float("eta", eta, min=0)
        self.variant = check_choice("variant", variant, ("paper", "code"))
        if not isinstance(erm, bool):
            raise MsdaError(f"erm must be true or false, got {erm!r}")
        self.erm = erm

    def mix(self, x, y, num_classes, generator=None, lam=None) -> MixOutput:
        if self.erm:  # the ablation trains on the unmixed batch
            return MIXERS["vanilla"](smoothing=self.smoothing)(x, y, num_classes)
        return super().mix(x, y, num_classes, generator=generator, lam=lam)

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        layer = representation_layer(model)
        B = batch_size(x, y)
        if layer is not None and self.erm:  # mixed at the representation: the ablation's batch is the clean one
            logits = clean = model(x)
            target = one_hot(y, num_classes, self.smoothing).to(logits.device)
        elif layer is not None:  # one encoder forward gives [mixed; clean] representations
            params = self.draw((B,), generator=generator)
            logits, clean = mixed_forward(model, layer, x, params, clean=True)
            target = mixed_target(y, num_classes, self.smoothing, params)
        else:
            out = self(x, y, num_classes, generator=generator)
            target = out.y
            if self.erm:  # mixed batch = clean batch: one forward serves both terms
                logits = clean = model(x)
            else:
                logits_all = model(torch.cat([out.x, x], dim=0))
                logits, clean = logits_all[:B], logits_all[B:]
        l_mix = soft_cross_entropy(logits, target)
        q = q_hat(clean, y, num_classes)
        e = expected_one_minus_lam(self.alpha)
        if self.variant == "paper":
            extra = e * q.abs().mean()
            total = l_mix + self.eta * extra
            denom = total.detach().abs()
            scale = torch.where(denom > 0, l_mix.detach().abs() / denom.clamp_min(1e-30), torch.ones_like(denom))
            loss = scale * total
        else:
            below = (q < CODE_THRESHOLD).to(q.dtype)
            extra = (q * below).sum() / B
            loss = l_mix - self.eta * e * extra
        return LossOutput(loss, logits, l_mix.detach())
