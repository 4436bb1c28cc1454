"""Pre-activation ResNets (He et al., 2016, "Identity mappings") with the CIFAR-style stem used
by the Mixup / Manifold Mixup / MixupE code: PreActResNet-18, -34, -50, -101.

Stem: one 3x3 conv to 64 channels (stride 1; no BN, no max-pool). Four stages of 64, 128,
256, 512 planes (stride 2 at the start of stages 2-4) made of pre-activation basic blocks
(18, 34: [2,2,2,2], [3,4,6,3]) or bottlenecks with expansion 4 (50, 101: [3,4,6,3],
[3,4,23,3]); final BN-ReLU, global average pooling, linear head. Where the shape changes the
shortcut is a 1x1 conv on the pre-activated input. Global pooling is adaptive, so the same
network runs at 32 px (CIFAR, 4x4 final map) and 64 px (Tiny-ImageNet, 8x8). Option
`stem_stride=2` halves the resolution in the stem, as some Tiny-ImageNet setups do.

`manifold_layers()`: [stage1, stage2, stage3, stage4].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_choice
from msda_cli.models import register_model
from msda_cli.models.common import StagedNet, conv1x1, conv3x3, he_init


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, planes, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes)
        self.shortcut = conv1x1(cin, planes, stride) if (stride != 1 or cin != planes) else None

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class PreActBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv1x1(cin, planes)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes, stride)
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), conv1x1(planes, cout)
        self.shortcut = conv1x1(cin, cout, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class PreActResNet(StagedNet):
    def __init__(self, block, num_blocks, num_classes: int, in_chans: int = 3, stem_stride: int = 1):
        super().__init__()
        check_choice("PreActResNet stem_stride", stem_stride, (1, 2))
        self.stem = conv3x3(in_chans, 64, stride=stem_stride)
        stages, cin = [], 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (i and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self.bn = nn.BatchNorm2d(cin)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def stages(self) -> list[nn.Module]:
        return [self.stage1, self.stage2, self.stage3, self.stage4]


@register_model("preactresnet18", label="PreActRN18")
def preactresnet18(num_classes: int, in_chans: int = 3, stem_stride: int = 1) -> nn.Module:
    """PreActResNet-18 (basic blocks [2, 2, 2, 2])."""
    return PreActResNet(PreActBlock, [2, 2, 2, 2], num_classes, in_chans, stem_stride=stem_stride)


@register_model("preactresnet34", label="PreActRN34")
def preactresnet34(num_classes: int, in_chans: int = 3, stem_stride: int = 1) -> nn.Module:
    """PreActResNet-34 (basic blocks [3, 4, 6, 3])."""
    return PreActResNet(PreActBlock, [3, 4, 6, 3], num_classes, in_chans, stem_stride=stem_stride)


@register_model("preactresnet50", label="PreActRN50")
def preactresnet50(num_classes: int, in_chans: int = 3, stem_stride: int = 1) -> nn.Module:
    """PreActResNet-50 (bottlenecks [3, 4, 6, 3])."""
    return PreActResNet(PreActBottleneck, [3, 4, 6, 3], num_classes, in_chans, stem_stride=stem_stride)


@register_model("preactresnet101", label="PreActRN101")
def preactresnet101(num_classes: int, in_chans: int = 3, stem_stride: int = 1) -> nn.Module:
    """PreActResNet-101 (bottlenecks [3, 4, 23, 3])."""
    return PreActResNet(PreActBottleneck, [3, 4, 23, 3], num_classes, in_chans, stem_stride=stem_stride)
