"""CIFAR ResNet (He et al., 2016, section 4.2): ResNet-56.

Stem: 3x3 conv to 16 channels, BN, ReLU. Three stages of n = (depth - 2) / 6 post-activation
basic blocks with 16, 32, 64 channels (stride 2 at the start of stages 2 and 3), global
average pooling, linear head. Shortcuts are the paper's option A for CIFAR: identity, and
at a stage change a stride-2 subsample padded with zero channels (no parameters), which gives
the paper's 0.85 M parameters for ResNet-56; option B (1x1 conv + BN projection) via
`shortcut="B"`.

`manifold_layers()`: [stage1, stage2, stage3].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_choice
from msda_cli.errors import MsdaError
from msda_cli.models import register_model
from msda_cli.models.common import StagedNet, conv1x1, conv3x3, he_init


class PadShortcut(nn.Module):
    """Option A shortcut: subsample by `stride`, append zero channels up to `cout`."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        if stride == 1 and cin == cout:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(cin, cout, stride)
        else:
            self.shortcut = nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(StagedNet):
    def __init__(self, depth: int, num_classes: int, in_chans: int = 3, shortcut: str = "A"):
        super().__init__()
        if (depth - 2) % 6:
            raise MsdaError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        check_choice("resnet shortcut", shortcut, ("A", "B"))
        n = (depth - 2) // 6
        self.stem = nn.Sequential(conv3x3(in_chans, 16), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        stages, cin = [], 16
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(cin, width, 2 if (i and j == 0) else 1, shortcut))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        he_init(self)

    def stages(self) -> list[nn.Module]:
        return [self.stage1, self.stage2, self.stage3]


@register_model("resnet56", label="RN56")
def resnet56(num_classes: int, in_chans: int = 3, shortcut: str = "A") -> nn.Module:
    """ResNet-56 for 32x32 inputs; `shortcut` "A" (the paper's) or "B"."""
    return CifarResNet(56, num_classes, in_chans, shortcut=shortcut)
