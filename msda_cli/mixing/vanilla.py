"""ERM: no mixing (label smoothing still applies)."""

import torch

from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import Mixer, MixOutput, one_hot


@register_mixer("vanilla", label="Vanilla")
class Vanilla(Mixer):
    def apply(self, x, y, num_classes, params) -> MixOutput:
        B = x.shape[0]
        target = one_hot(y, num_classes, self.smoothing).to(x.device)
        ones = torch.ones(B, device=x.device)
        index = torch.arange(B, device=x.device).view(1, B)
        return MixOutput(x, target, ones, None, index, ones.view(B, 1))
