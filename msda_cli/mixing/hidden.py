"""The hidden-representation path of the mixing contract: Mixup and MixupE on a model's representation.

A model that offers `representation()` (a module whose output is a fixed-shape [B, D] representation,
e.g. GIN's graph-level readout) is mixed there instead of at its input: a forward hook replaces the
module's output h by λ·h + (1−λ)·h[π], as Manifold Mixup mixes a stage's output. MixupE needs the clean
logits too: the hook then returns [λ·h + (1−λ)·h[π]; h] (2B rows), so one forward of the encoder serves
the mixed and the clean batch, as one forward over [x̃; x] does for images (MixupE §2.3: for graphs, "we
first need to project the input samples to a fixed shape hidden states using an encoder network. After
this projection, MixupE can be applied in the usual form").
"""

from __future__ import annotations

import torch
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.mixing.base import label_mix, to_device

# the methods whose loss takes any input the model takes (a graph batch): the others mix input tensors
REPRESENTATION_METHODS = ("vanilla", "mixup", "mixupe")


def representation_layer(model) -> nn.Module | None:
    """The module of `model` whose output is mixed, looking through msda's `Normalized` (`.net`), DDP
    (`.module`) and torch.compile (`._orig_mod`); None for a model without one (mixed at its input)."""
    m = model
    for _ in range(5):
        fn = getattr(m, "representation", None)
        if callable(fn):
            return fn()
        m = getattr(m, "net", None) or getattr(m, "module", None) or getattr(m, "_orig_mod", None)
        if m is None:
            break
    return None


def batch_size(x, y: torch.Tensor) -> int:
    """The number of samples of a batch whose inputs may be no tensor (a graph batch)."""
    return int(x.shape[0]) if torch.is_tensor(x) else int(y.shape[0])


def mixed_forward(model, layer: nn.Module, x, params: dict, clean: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits of the batch mixed at `layer` with the draw `params`, logits of the clean batch or None)."""
    def hook(module, inputs, output):
        if not torch.is_tensor(output) or output.dim() != 2:
            raise MsdaError(f"the representation of {type(module).__name__} must be a [B, D] tensor")
        lam = to_device(params["lam"], output.device, torch.float32).view(-1, 1)
        index = to_device(params["index"][1], output.device)
        # blend in fp32 (under autocast λ would otherwise be rounded away from the label's λ)
        mixed = torch.lerp(output.index_select(0, index).float(), output.float(), lam).to(output.dtype)
        return torch.cat([mixed, output]) if clean else mixed

    handle = layer.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if not clean:
        return logits, None
    B = logits.shape[0] // 2
    return logits[:B], logits[B:]


def mixed_target(y: torch.Tensor, num_classes: int, smoothing: float, params: dict) -> torch.Tensor:
    """Soft targets λ·y + (1−λ)·y[π] of a draw, on y's device (λ [1] or [B])."""
    B = y.shape[0]
    lam = to_device(params["lam"], y.device, torch.float32)
    lam = lam.expand(B) if lam.shape[0] == 1 else lam
    return label_mix(y, num_classes, smoothing, to_device(params["index"], y.device), torch.stack([lam, 1 - lam], 1))
