"""ERM: no mixing (label smoothing still applies)."""

import torch

from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import Mixer, MixOutput, one_hot


@register_mixer("vanilla")
class Vanilla(Mixer):
    def mix(self, x, y, num_classes, generator=None, lam=None) -> MixOutput:
        target = one_hot(y, num_classes, self.smoothing).to(x.device)
        return MixOutput(x, target, torch.ones(x.shape[0], device=x.device), None)
