"""Wide residual networks (Zagoruyko & Komodakis, 2016): WRN-28-2, WRN-28-8, WRN-28-10, WRN-16-8.

WRN-d-k: 3x3 stem conv to 16 channels, three groups of n = (d - 4) / 6 pre-activation wide
basic blocks (BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3) with 16k, 32k, 64k channels (stride 2
at the start of groups 2 and 3), final BN-ReLU, global average pooling, linear head. Where
the width or stride changes, the shortcut is a 1x1 conv applied to the block's pre-activated
input, as in the authors' code. Option `dropout` is the drop rate between the two convs
(paper: 0.3 for their dropout results; default 0).

`manifold_layers()`: [group1, group2, group3].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_float
from msda_cli.errors import MsdaError
from msda_cli.models import register_model
from msda_cli.models.common import StagedNet, conv1x1, conv3x3, he_init


class WideBasic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = conv1x1(cin, cout, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(StagedNet):
    def __init__(self, depth: int, widen: int, num_classes: int, in_chans: int = 3, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise MsdaError(f"WideResNet depth must be 6n + 4, got {depth}")
        check_float("WideResNet dropout", dropout, min=0, max=1, open="max")
        n = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.stem = conv3x3(in_chans, 16)
        groups, cin = [], 16
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(WideBasic(cin, width, 2 if (i and j == 0) else 1, float(dropout)))
                cin = width
            groups.append(nn.Sequential(*blocks))
        self.group1, self.group2, self.group3 = groups
        self.bn = nn.BatchNorm2d(widths[-1])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        he_init(self)

    def stages(self) -> list[nn.Module]:
        return [self.group1, self.group2, self.group3]


@register_model("wrn28-2", label="WRN28-2")
def wrn28_2(num_classes: int, in_chans: int = 3, dropout: float = 0.0) -> nn.Module:
    """WRN-28-2."""
    return WideResNet(28, 2, num_classes, in_chans, dropout=dropout)


@register_model("wrn28-8", label="WRN28-8")
def wrn28_8(num_classes: int, in_chans: int = 3, dropout: float = 0.0) -> nn.Module:
    """WRN-28-8."""
    return WideResNet(28, 8, num_classes, in_chans, dropout=dropout)


@register_model("wrn28-10", label="WRN28-10")
def wrn28_10(num_classes: int, in_chans: int = 3, dropout: float = 0.0) -> nn.Module:
    """WRN-28-10."""
    return WideResNet(28, 10, num_classes, in_chans, dropout=dropout)


@register_model("wrn16-8", label="WRN16-8")
def wrn16_8(num_classes: int, in_chans: int = 3, dropout: float = 0.0) -> nn.Module:
    """WRN-16-8."""
    return WideResNet(16, 8, num_classes, in_chans, dropout=dropout)
