"""The MLP of the Mixup / MixupE tabular (UCI) experiments: input [B, D] with D = `in_chans`
features, two hidden layers of 128 units with ReLU, linear output. PyTorch's default Linear
init. Options `hidden` (default 128) and `depth` (number of hidden layers, default 2).

`manifold_layers()`: the hidden layers (each Linear + ReLU), for mixing hidden states.
"""

from __future__ import annotations

from torch import nn

from msda_cli.checks import check_int
from msda_cli.models import register_model


class MLP(nn.Module):
    def __init__(self, num_classes: int, in_features: int, hidden: int = 128, depth: int = 2):
        super().__init__()
        depth, hidden = check_int("mlp depth", depth, min=1), check_int("mlp hidden", hidden, min=1)
        dims = [in_features] + [hidden] * depth
        self.hidden = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(dims, dims[1:]))
        self.fc = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = layer(x)
        return self.fc(x)

    def manifold_layers(self) -> list[nn.Module]:
        return list(self.hidden)


@register_model("mlp", label="MLP")
def mlp(num_classes: int, in_chans: int = 3, hidden: int = 128, depth: int = 2) -> nn.Module:
    """MLP on [B, in_chans] features."""
    return MLP(num_classes, in_chans, hidden=hidden, depth=depth)
