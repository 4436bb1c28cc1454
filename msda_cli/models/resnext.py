"""CIFAR ResNeXt (Xie et al., 2017, section 5.3): ResNeXt-29 (4 x 24d), the "ResNeXt29-4-24"
backbone of the DCutMix / Co-Mixup CIFAR-100 comparison (cardinality C = 4, bottleneck
width d = 24 per group).

ResNeXt-29 (C x d): 3x3 stem conv to 64 channels, BN, ReLU; three stages of 3 bottleneck
blocks (9 blocks x 3 layers + stem + head = 29) with outputs 256, 512, 1024 channels and
grouped 3x3 convs of C*d = 96, 192, 384 channels (the width doubles per stage), stride 2 in
the 3x3 conv at the start of stages 2 and 3. Blocks are post-activation,
conv1x1-BN-ReLU-gconv3x3-BN-ReLU-conv1x1-BN, + shortcut, ReLU; the shortcut is a 1x1 conv +
BN projection where the shape changes. Global average pooling, linear head.

`manifold_layers()`: [stage1, stage2, stage3].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.models import register_model
from msda_cli.models.common import StagedNet, conv1x1, conv3x3, he_init


class ResNeXtBottleneck(nn.Module):
    def __init__(self, cin: int, width: int, cout: int, cardinality: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv1x1(cin, width), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride, groups=cardinality), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, cout), nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class CifarResNeXt(StagedNet):
    def __init__(self, depth: int, cardinality: int, base_width: int, num_classes: int, in_chans: int = 3):
        super().__init__()
        if (depth - 2) % 9:
            raise MsdaError(f"ResNeXt depth must be 9n + 2, got {depth}")
        n = (depth - 2) // 9
        self.stem = nn.Sequential(conv3x3(in_chans, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        stages, cin = [], 64
        for i in range(3):
            width, cout = cardinality * base_width * 2**i, 256 * 2**i
            blocks = []
            for j in range(n):
                blocks.append(ResNeXtBottleneck(cin, width, cout, cardinality, 2 if (i and j == 0) else 1))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def stages(self) -> list[nn.Module]:
        return [self.stage1, self.stage2, self.stage3]


@register_model("resnext29-4-24", label="ResNeXt29-4-24")
def resnext29_4_24(num_classes: int, in_chans: int = 3) -> nn.Module:
    """ResNeXt-29 (4 x 24d) for 32x32 inputs; no options."""
    return CifarResNeXt(29, 4, 24, num_classes, in_chans)
