"""Architectures from timm, trained from scratch (never with pretrained weights): ViT-B/16 and CoAtNet-0
(MixupE Table 3), and `timm:NAME` for any model in `timm.list_models()`.

Each gets the data set's number of classes, its channels and, where the model takes one, its input size
(`img_size`: the data set's image side, filled in by the builder). MixupE Table 3 trains both at ImageNet's
224 px. At CIFAR's 32 px ViT-B/16 keeps its 16 px patches (2 × 2 tokens: the architecture the name
says); `patch_size: 4` gives the 8 × 8 tokens that small-image ViTs use. CoAtNet-0 downsamples 32×:
a 32 px image ends in one 1 × 1 map.
"""

from __future__ import annotations

from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.models import register_model

TIMM_PREFIX = "timm:"


def create(name: str, num_classes: int, in_chans: int, img_size: int | None = None, **options) -> nn.Module:
    """timm.create_model(name) with random weights; `img_size` only where the model takes it."""
    import timm

    kwargs = dict(pretrained=False, num_classes=num_classes, in_chans=in_chans, **options)
    try:
        if img_size:
            try:
                return timm.create_model(name, img_size=img_size, **kwargs)
            except TypeError as e:
                if "img_size" not in str(e):
                    raise
        return timm.create_model(name, **kwargs)
    except TypeError as e:  # an option the model does not take
        raise MsdaError(f"timm model {name!r}: {e}") from None


def timm_architecture(arch: str):
    """The constructor of `timm:NAME`; MsdaError unless NAME is in timm.list_models()."""
    import timm

    name = arch[len(TIMM_PREFIX):]
    if name not in timm.list_models():
        raise MsdaError(f"unknown timm architecture {name!r} (see timm.list_models(); e.g. timm:resnet18)")

    def constructor(num_classes: int, in_chans: int = 3, img_size: int | None = None, **options) -> nn.Module:
        return create(name, num_classes, in_chans, img_size, **options)

    return constructor


@register_model("vit-b16", label="ViT-B/16")
def vit_b16(num_classes: int, in_chans: int = 3, img_size: int = 224, patch_size: int = 16) -> nn.Module:
    """timm's vit_base_patch16_224 (Dosovitskiy et al.: 12 layers, width 768, 12 heads; 86 M parameters)."""
    return create("vit_base_patch16_224", num_classes, in_chans, img_size, patch_size=patch_size)


@register_model("coatnet-0", label="CoAtNet-0")
def coatnet_0(num_classes: int, in_chans: int = 3, img_size: int = 224) -> nn.Module:
    """timm's coatnet_0_224 (Dai et al.'s CoAtNet-0: C-C-T-T stages of 2-3-5-2 blocks; 25 M parameters)."""
    return create("coatnet_0_224", num_classes, in_chans, img_size)
