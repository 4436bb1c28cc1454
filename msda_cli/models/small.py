"""Small networks that train in seconds on a CPU: the digits CNN."""

from torch import nn

from msda_cli.models import register_model


class Staged(nn.Module):
    """A network of `stages` then a `head`; Manifold Mixup mixes after any stage."""

    def forward(self, x):
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def manifold_layers(self):
        return list(self.stages)


class DigitsCNN(Staged):
    """Three conv blocks and a linear head, sized for 32x32 upsampled digits."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.stages = nn.ModuleList(
            [block(in_chans, width), block(width, 2 * width), block(2 * width, 4 * width)]
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))


@register_model("digits-cnn")
def digits_cnn(num_classes: int = 10, in_chans: int = 3, width: int = 32) -> nn.Module:
    return DigitsCNN(num_classes=num_classes, in_chans=in_chans, width=width)
