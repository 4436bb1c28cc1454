"""Additive PyramidNets for CIFAR (Han, Kim & Kim, 2017): PyramidNet-110 (alpha = 64) and
PyramidNet-200 (alpha = 240), the backbones of the CutMix and DCutMix CIFAR tables (1.7 M and
26.8 M parameters with 100 classes).

Both use bottleneck blocks by default, as the CutMix training script does (its
`--no-bottleneck` flag is off unless given): that is what gives the published 1.7 M for
PyramidNet-110 with alpha = 64 (1.73 M here); the basic-block PyramidNet-110 has 2.62 M at
alpha = 64 (the PyramidNet paper's "1.7 M" basic-block model has alpha = 48: 1.77 M here). Option
`bottleneck=False` selects basic blocks.

Stem: 3x3 conv to 16 channels + BN. Three stages of n blocks (n = (depth - 2) / 9 bottleneck
or (depth - 2) / 6 basic), stride 2 at the start of stages 2 and 3. The widening alpha is
spread evenly over all 3n blocks: block k (1-based) has round(16 + k * alpha / 3n) planes
(Python rounding of the running float sum, as in the authors' code); bottleneck outputs are
4x planes. Blocks have no ReLU after their last BN:
basic = BN-conv3x3-BN-ReLU-conv3x3-BN, bottleneck = BN-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN.
Shortcuts have no parameters: 2x2 average pooling when the stride is 2, then zero-padding of
the extra channels. Final BN-ReLU, global average pooling, linear head.

`manifold_layers()`: [stage1, stage2, stage3].

Regularizers (models/regularizers.py), off by default: `survival` is stochastic depth's p_L, the survival
probability of the last of the 3n blocks, block l surviving with 1 - (l / 3n)(1 - p_L) (Huang et al.'s
linear decay); `dropblock_keep` < 1 applies DropBlock (block side `dropblock_size`) to the output of every
block of stages 2 and 3, after the skip connection (Ghiasi et al. apply it to ResNet-50's last two groups,
"after both convolution layers and skip connections"). Neither adds a parameter or a state dict key.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_float
from msda_cli.errors import MsdaError
from msda_cli.models import register_model
from msda_cli.models.common import StagedNet, conv1x1, conv3x3, he_init
from msda_cli.models.regularizers import DropBlock, linear_survival, stochastic_residual


def _shortcut(x, stride: int, cout: int):
    if stride > 1:
        x = F.avg_pool2d(x, 2, stride=2, ceil_mode=True)
    extra = cout - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x


class PyramidBlock(nn.Module):
    """A residual block: branch(x) + shortcut(x), under stochastic depth (`survival`) and DropBlock (`drop`)."""

    def __init__(self):
        super().__init__()
        self.survival, self.drop = 1.0, None  # set by PyramidNet

    def forward(self, x):
        out = stochastic_residual(_shortcut(x, self.stride, self.out_chans), lambda: self.branch(x),
                                  self.survival, self.training)
        return self.drop(out) if self.drop is not None else out


class PyramidBasic(PyramidBlock):
    ratio = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.stride, self.out_chans = stride, planes
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, planes, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes)
        self.bn3 = nn.BatchNorm2d(planes)

    def branch(self, x):
        out = self.conv1(self.bn1(x))
        return self.bn3(self.conv2(F.relu(self.bn2(out))))


class PyramidBottleneck(PyramidBlock):
    ratio = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.stride, self.out_chans = stride, planes * self.ratio
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv1x1(cin, planes)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes, stride)
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), conv1x1(planes, planes * self.ratio)
        self.bn4 = nn.BatchNorm2d(planes * self.ratio)

    def branch(self, x):
        out = self.conv1(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(out)))
        return self.bn4(self.conv3(F.relu(self.bn3(out))))


class PyramidNet(StagedNet):
    def __init__(self, depth: int, num_classes: int, in_chans: int = 3, alpha: float = 64, bottleneck: bool = True,
                 survival: float = 1.0, dropblock_keep: float = 1.0, dropblock_size: int = 3):
        super().__init__()
        check_float("PyramidNet alpha", alpha, min=0)
        survival = check_float("PyramidNet survival", survival, min=0, max=1, open="min")
        dropblock = DropBlock(dropblock_keep, dropblock_size)  # validates both
        block = PyramidBottleneck if bottleneck else PyramidBasic
        per = 9 if bottleneck else 6
        if (depth - 2) % per:
            kind = "bottleneck" if bottleneck else "basic"
            raise MsdaError(f"PyramidNet depth must be {per}n + 2 with {kind} blocks, got {depth}")
        n = (depth - 2) // per
        step = alpha / (3 * n)
        self.stem = nn.Sequential(conv3x3(in_chans, 16), nn.BatchNorm2d(16))
        width, cin, stages = 16.0, 16, []
        for i in range(3):
            blocks = []
            for j in range(n):
                width += step
                planes = int(round(width))
                blocks.append(block(cin, planes, 2 if (i and j == 0) else 1))
                blocks[-1].survival = linear_survival(i * n + j + 1, 3 * n, survival)
                if i and dropblock.keep_prob < 1:
                    blocks[-1].drop = DropBlock(dropblock_keep, dropblock_size)
                cin = planes * block.ratio
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.bn = nn.BatchNorm2d(cin)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def stages(self) -> list[nn.Module]:
        return [self.stage1, self.stage2, self.stage3]


@register_model("pyramidnet110", label="PyramidNet-110")
def pyramidnet110(num_classes: int, in_chans: int = 3, alpha: float = 64, bottleneck: bool = True,
                  survival: float = 1.0, dropblock_keep: float = 1.0, dropblock_size: int = 3) -> nn.Module:
    """PyramidNet-110; `alpha` is the widening α̃, `survival` stochastic depth's p_L, `dropblock_keep` and
    `dropblock_size` DropBlock's keep_prob and block size (1.0: off)."""
    return PyramidNet(110, num_classes=num_classes, in_chans=in_chans, alpha=alpha, bottleneck=bottleneck,
                      survival=survival, dropblock_keep=dropblock_keep, dropblock_size=dropblock_size)


@register_model("pyramidnet200", label="PyramidNet-200")
def pyramidnet200(num_classes: int, in_chans: int = 3, alpha: float = 240, bottleneck: bool = True,
                  survival: float = 1.0, dropblock_keep: float = 1.0, dropblock_size: int = 3) -> nn.Module:
    """PyramidNet-200; `alpha` is the widening α̃, `survival` stochastic depth's p_L, `dropblock_keep` and
    `dropblock_size` DropBlock's keep_prob and block size (1.0: off)."""
    return PyramidNet(200, num_classes=num_classes, in_chans=in_chans, alpha=alpha, bottleneck=bottleneck,
                      survival=survival, dropblock_keep=dropblock_keep, dropblock_size=dropblock_size)
