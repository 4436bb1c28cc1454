"""ERM: no mixing (label smoothing still applies)."""

import torch

from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import LossOutput, Mixer, MixOutput, one_hot, soft_cross_entropy


@register_mixer("vanilla", label="Vanilla")
class Vanilla(Mixer):
    def apply(self, x, y, num_classes, params) -> MixOutput:
        B = x.shape[0]
        target = one_hot(y, num_classes, self.smoothing).to(x.device)
        ones = torch.ones(B, device=x.device)
        index = torch.arange(B, device=x.device).view(1, B)
        return MixOutput(x, target, ones, None, index, ones.view(B, 1))

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        """The cross-entropy of the batch as it is: `x` may be any input the model takes (a graph batch)."""
        logits = model(x)
        return LossOutput(soft_cross_entropy(logits, one_hot(y, num_classes, self.smoothing).to(logits.device)),
                          logits)
