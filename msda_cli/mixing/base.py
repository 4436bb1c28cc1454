"""The mixing contract shared by every method.

A mixer takes a batch `x` in pixel space and integer labels `y` and returns `MixOutput`.
All random numbers are drawn on the CPU from `generator` (a CPU `torch.Generator`, or the
global CPU RNG when None); there are only O(B·K) of them. They are then moved to `x.device`,
where masks are built and blended, so draws are identical on CPU and GPU and the step needs
no host sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from msda_cli.errors import MsdaError


@dataclass
class MixOutput:
    x: torch.Tensor  # mixed inputs, same shape/dtype/device as the input batch
    y: torch.Tensor  # soft targets [B, C], rows sum to 1
    lam: torch.Tensor  # [B] realized weight of each sample's own image/label
    mask: torch.Tensor | None = None  # [B,1,H,W] weight of x in the mix (two-image methods)


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to backpropagate
    logits: torch.Tensor  # logits of the mixed batch (for train accuracy)
    value: torch.Tensor | None = None  # the loss to log, when it differs from `loss`


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c target_c log softmax(logits)_c."""
    return torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def one_hot(y: torch.Tensor, num_classes: int, smoothing: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    """Integer labels (or soft targets, passed through) as smoothed one-hot rows."""
    if y.dim() == 2:
        target = y.to(dtype)
    else:
        target = F.one_hot(y.long(), num_classes).to(dtype)
    if smoothing:
        target = target * (1.0 - smoothing) + smoothing / num_classes
    return target


def check_range(name: str, value, low=None, high=None, low_open=False, high_open=False):
    """Raise MsdaError unless low <(=) value <(=) high."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MsdaError(f"{name} must be a number, got {value!r}") from None
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        raise MsdaError(f"{name} must satisfy {lo}{name}{hi}, got {value:g}")
    return value


class Mixer:
    """Base class: subclasses implement `mix`; `loss` is one training step's loss.

    `smoothing` (label smoothing) is an option of every method.
    """

    name = "base"

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = check_range("smoothing", smoothing, 0.0, 1.0, high_open=True)

    def hparams(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{type(self).__name__}({args})"

    def __call__(self, x, y, num_classes: int, generator: torch.Generator | None = None, lam=None) -> MixOutput:
        return self.mix(x, y, num_classes, generator=generator, lam=lam)

    def mix(self, x, y, num_classes, generator=None, lam=None) -> MixOutput:
        raise NotImplementedError

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        """Mix, forward, soft-target cross-entropy. Methods that need the model override this."""
        out = self(x, y, num_classes, generator=generator)
        logits = model(out.x)
        return LossOutput(soft_cross_entropy(logits, out.y), logits)
