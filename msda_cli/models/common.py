"""Helpers shared by the architecture modules: weight initialization, and the
stem → stages → classifier skeleton of the residual families."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


def he_init(model: nn.Module) -> nn.Module:
    """He et al. (2015) init as the residual-network papers' code does it.

    Conv: N(0, 2 / fan_out) with fan_out = k_h * k_w * out_channels (PyTorch's
    `kaiming_normal_(mode="fan_out")`, the `normal_(0, sqrt(2 / n))` of the original code);
    BatchNorm: weight 1, bias 0; Linear: PyTorch's default uniform weight, bias 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)



class StagedNet(nn.Module):
    """stem → stages → (final BN-ReLU of the pre-activation nets, when `self.bn` is set) → global
    average pool → `fc`. Manifold mixup may mix after each stage.

    Subclasses build `stem`, their stages, `pool`, `fc` (and `bn`) and list the stages in `stages()`.
    """

    def stages(self) -> list[nn.Module]:
        raise NotImplementedError

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages():
            x = stage(x)
        bn = getattr(self, "bn", None)  # a registered submodule, or none (post-activation nets)
        if bn is not None:
            x = F.relu(bn(x))
        return self.fc(self.pool(x).flatten(1))

    def manifold_layers(self) -> list[nn.Module]:
        """The residual stages, in forward order: Manifold Mixup mixes their outputs."""
        return list(self.stages())
