"""LeNet, VGG-11 and VGG-13 for 1-channel 160×101 spectrograms (MixupE Table 5, after Zhang et al., 2018).

MixupE §4.3: "similar to Zhang et al. [2018], we use LeNet [LeCun et al., 1998] and VGG-11 and VGG-13
[Simonyan and Zisserman, 2014] architectures." Neither paper prints them; taken here as GCommandsPytorch's
`model.py` defines them (github.com/adiyoss/GCommandsPytorch at commit 31bcdab, the loader whose spectrograms
the data set computes, see msda_cli.data.speech):
  - LeNet: conv 5×5 (1 → 20), max pool 2, ReLU; conv 5×5 (20 → 20), Dropout2d, max pool 2, ReLU; linear
    20·37·22 = 16 280 → 1000, ReLU, dropout; linear 1000 → classes (dropout p = `dropout`, 0.5 as nn.Dropout's
    default it uses; 0 turns both off);
  - VGG-11 / VGG-13: the configurations A and B of Simonyan and Zisserman ([64, M, 128, M, 256, 256, M, 512,
    512, M, 512, 512, M] and [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M]), each conv
    3×3 with padding 1, BatchNorm and ReLU, M a 2×2 max pool; on the flattened 512·5·3 = 7680 features of a
    160×101 input, linear 7680 → 512 and linear 512 → classes with no activation between them (its `fc1`, `fc2`).
The linear layers' widths follow from the input: `height` × `width` (160 × 101, the papers' spectrogram).
The output is logits (GCommandsPytorch's log_softmax is left to the loss). Manifold layers: the conv stages.
"""

from __future__ import annotations

from torch import nn

from msda_cli.checks import check_float, check_int
from msda_cli.models import register_model
from msda_cli.models.small import Staged

VGG_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
}


def _lenet_side(n: int) -> int:
    return ((n - 4) // 2 - 4) // 2  # two valid 5×5 convs, each followed by a 2×2 pool (floor)


class LeNet(Staged):
    def __init__(self, num_classes: int, in_chans: int, height: int, width: int, dropout: float):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_chans, 20, 5), nn.MaxPool2d(2), nn.ReLU()),
            nn.Sequential(nn.Conv2d(20, 20, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2), nn.ReLU()),
        ])
        flat = 20 * _lenet_side(height) * _lenet_side(width)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 1000), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(1000, num_classes))


class SpectrogramVGG(Staged):
    def __init__(self, config, num_classes: int, in_chans: int, height: int, width: int):
        super().__init__()
        stages, layers, cin = [], [], in_chans
        for v in config:
            if v == "M":  # a stage ends at each pool
                stages.append(nn.Sequential(*layers, nn.MaxPool2d(2, 2)))
                layers = []
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        self.stages = nn.ModuleList(stages)
        pools = len(stages)  # padded 3×3 convs keep the size; each 2×2 pool halves it (floor)
        flat = cin * (height // 2**pools) * (width // 2**pools)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 512), nn.Linear(512, num_classes))


def _size(height: int, width: int) -> tuple[int, int]:
    return check_int("model.height", height, min=32), check_int("model.width", width, min=32)


@register_model("lenet", label="LeNet")
def lenet(num_classes: int = 30, in_chans: int = 1, height: int = 160, width: int = 101,
          dropout: float = 0.5) -> nn.Module:
    height, width = _size(height, width)
    dropout = check_float("model.dropout", dropout, min=0, max=1, open="max")
    return LeNet(num_classes, in_chans, height, width, dropout)


@register_model("vgg11", label="VGG-11")
def vgg11(num_classes: int = 30, in_chans: int = 1, height: int = 160, width: int = 101) -> nn.Module:
    return SpectrogramVGG(VGG_CONFIGS["vgg11"], num_classes, in_chans, *_size(height, width))


@register_model("vgg13", label="VGG-13")
def vgg13(num_classes: int = 30, in_chans: int = 1, height: int = 160, width: int = 101) -> nn.Module:
    return SpectrogramVGG(VGG_CONFIGS["vgg13"], num_classes, in_chans, *_size(height, width))
