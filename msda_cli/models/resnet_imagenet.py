"""ImageNet ResNets: torchvision's `resnet50` and `resnet152` architectures (weights=None; 25.6 M and
60.2 M parameters with 1000 classes), initialized as torchvision does (Kaiming-normal fan_out convs, BN 1/0).
ResNet-152 is the DCutMix paper's black-box substitute ("we set a substitute model (i.e. ResNet152)").

`in_chans` other than 3 replaces the 7x7 stem conv with one of the same shape for that many
input channels. Option `zero_init_residual` (default False) zeroes the last BN of each block
(Goyal et al., 2017), as torchvision offers.

`manifold_layers()`: [layer1, layer2, layer3, layer4].
"""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from msda_cli.models import register_model


class TorchvisionResNet(ResNet):
    """torchvision's bottleneck ResNet of `blocks` per stage, plus `manifold_layers()`."""

    def __init__(self, blocks: list[int], num_classes: int = 1000, in_chans: int = 3,
                 zero_init_residual: bool = False):
        super().__init__(Bottleneck, blocks, num_classes=num_classes, zero_init_residual=bool(zero_init_residual))
        if in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def manifold_layers(self) -> list[nn.Module]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]


@register_model("resnet50", label="ResNet-50")
def resnet50(num_classes: int, in_chans: int = 3, zero_init_residual: bool = False) -> nn.Module:
    """torchvision ResNet-50 (random init)."""
    return TorchvisionResNet([3, 4, 6, 3], num_classes, in_chans, zero_init_residual=zero_init_residual)


@register_model("resnet152", label="ResNet-152")
def resnet152(num_classes: int, in_chans: int = 3, zero_init_residual: bool = False) -> nn.Module:
    """torchvision ResNet-152 (random init)."""
    return TorchvisionResNet([3, 8, 36, 3], num_classes, in_chans, zero_init_residual=zero_init_residual)
