"""Architectures by name: `build_model("preactresnet18", num_classes=100)`.

Each architecture module registers its constructors with `@register_model`; importing
this package imports them all, so the registry is complete.
"""

from __future__ import annotations

import torch
from torch import nn

from msda_cli.registry import Registry

MODELS = Registry("architecture")
register_model = MODELS.register
# Architectures that take flat feature vectors: an image input is flattened (C·H·W features).
FLAT_INPUT: set[str] = {"mlp"}


class Normalized(nn.Module):
    """Normalizes [0, 1] inputs inside the model, so attacks and mixing work in pixel space."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x):
        if x.dim() == 4:
            x = (x - self.mean) / self.std
        return self.net(x)

    def manifold_layers(self) -> list[nn.Module]:
        """Modules after which manifold mixup may mix hidden states (empty if unsupported)."""
        fn = getattr(self.net, "manifold_layers", None)
        return list(fn()) if fn else []


def build_model(name: str, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """Build architecture `name`; unknown names raise MsdaError listing the valid ones."""
    return MODELS.lookup(name)(num_classes=num_classes, in_chans=in_chans, **kwargs)


# Importing the family modules registers their architectures, in this order: the order of a report's columns.
from msda_cli.models import (  # noqa: E402,F401
    resnet_cifar, wide_resnet, preact_resnet, pyramidnet, resnext, resnet_imagenet, mlp, small,
)
