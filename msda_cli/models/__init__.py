"""Architectures by name: `build_model("preactresnet18", num_classes=100)`.

Each architecture module registers its constructors with `@register_model`; importing
this package imports them all, so the registry is complete. A constructor is
`fn(num_classes, in_chans=3, **named_options)`: its options and their defaults are its signature's.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from msda_cli.errors import MsdaError
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
        if torch.is_tensor(x) and x.dim() == 4:  # a graph batch (GIN) passes as it is
            x = (x - self.mean) / self.std
        return self.net(x)

    def manifold_layers(self) -> list[nn.Module]:
        """Modules after which manifold mixup may mix hidden states (empty if unsupported)."""
        fn = getattr(self.net, "manifold_layers", None)
        return list(fn()) if fn else []


def architecture(name: str):
    """The constructor of `name`: a registered architecture, or `timm:NAME` for any timm model."""
    from msda_cli.models.timm_models import TIMM_PREFIX, timm_architecture

    return timm_architecture(name) if name.startswith(TIMM_PREFIX) else MODELS.lookup(name)


def model_options(name: str) -> dict:
    """The options architecture `name` takes, with their defaults (read from its constructor's signature)."""
    params = inspect.signature(architecture(name)).parameters
    return {k: p.default for k, p in params.items()
            if k not in ("num_classes", "in_chans") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def build_model(name: str, num_classes: int, in_chans: int = 3, **options) -> nn.Module:
    """Build architecture `name`; an unknown name or option raises MsdaError listing the valid ones."""
    valid = model_options(name)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(architecture(name)).parameters.values())
    unknown = sorted(set(options) - set(valid))
    if unknown and not takes_any:  # a timm model's own options go to timm.create_model
        shown = ", ".join(sorted(valid)) or "none"
        raise MsdaError(f"architecture {name!r} has no option {', '.join(map(repr, unknown))}; valid: {shown}")
    return architecture(name)(num_classes=num_classes, in_chans=in_chans, **options)


# Importing the family modules registers their architectures, in this order: the order of a report's columns.
from msda_cli.models import (  # noqa: E402,F401
    resnet_cifar, wide_resnet, preact_resnet, pyramidnet, resnext, resnet_imagenet, mlp, small, timm_models,
)
from msda_cli.models import speech  # noqa: E402,F401  (LeNet, VGG-11, VGG-13 for spectrograms)
from msda_cli.models import gin  # noqa: E402,F401  (GIN for graphs, MixupE Table 6)
