"""Manifold Mixup (Verma et al., 2019): mix hidden states of a randomly chosen layer.

The layer k is chosen uniformly from {0, 1, …, `layers`}: 0 is the input, k ≥ 1 the output of
the k-th module of `model.manifold_layers()` (the residual stages, an MLP's hidden layers). The
default `layers: 2` is the authors' k ∈ {0, 1, 2}: the input, after the first and after the
second stage. A model with fewer such modules offers what it has (none: plain Mixup). A forward
hook replaces the chosen module's output h by λ·h + (1−λ)·h[π]; the loss is soft cross-entropy
on the mixed labels. `mix()` alone (no model) mixes inputs: the preview shows that.
"""

from __future__ import annotations

import torch

from msda_cli.checks import check_int
from msda_cli.errors import MsdaError
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import LossOutput, label_mix, soft_cross_entropy, to_device
from msda_cli.mixing.mixup import Mixup


def manifold_layers(model) -> list:
    """`manifold_layers()` of the model, looking through DDP (`.module`) and torch.compile (`._orig_mod`)."""
    m = model
    for _ in range(4):
        fn = getattr(m, "manifold_layers", None)
        if callable(fn):
            return list(fn())
        m = getattr(m, "module", None) or getattr(m, "_orig_mod", None)
        if m is None:
            break
    return []


@register_mixer("manifold-mixup", label="Manifold Mixup")
class ManifoldMixup(Mixup):
    """Manifold Mixup: `alpha` (Beta(α, α); the authors use 2.0 on CIFAR), `layers` (how many
    hidden layers besides the input may be mixed; 2 as the authors)."""

    def __init__(self, alpha: float = 2.0, layers: int = 2, mask_mode: str = "batch", smoothing: float = 0.0):
        super().__init__(alpha, mask_mode, smoothing)
        self.layers = check_int("layers", layers, min=0)

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        self.check_input(x)
        layers = manifold_layers(model)[:self.layers]
        params = self.draw(tuple(x.shape), generator=generator)
        choice = int(torch.randint(0, len(layers) + 1, (1,), generator=generator))
        if choice == 0:
            out = self.apply(x, y, num_classes, params)
            logits = model(out.x)
            return LossOutput(soft_cross_entropy(logits, out.y), logits)
        lam = to_device(params["lam"], x.device, torch.float32)
        index = to_device(params["index"], x.device)

        def hook(module, inputs, output):
            if not torch.is_tensor(output):
                raise MsdaError(f"manifold mixup needs a tensor output from {type(module).__name__}")
            # blend in fp32 (under bf16/fp16 autocast λ would otherwise be rounded away from the label's λ)
            w = lam.view(-1, *([1] * (output.dim() - 1))).float()
            mixed = torch.lerp(output.index_select(0, index[1]).float(), output.float(), w)
            return mixed.to(output.dtype)

        handle = layers[choice - 1].register_forward_hook(hook)
        try:
            logits = model(x)
        finally:
            handle.remove()
        B = x.shape[0]
        lam_b = lam.expand(B) if lam.shape[0] == 1 else lam
        target = label_mix(y, num_classes, self.smoothing, index, torch.stack([lam_b, 1.0 - lam_b], dim=1))
        return LossOutput(soft_cross_entropy(logits, target), logits)
