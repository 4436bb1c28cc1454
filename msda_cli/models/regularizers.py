"""Structural regularizers of residual networks: stochastic depth and DropBlock.

Stochastic depth (Huang et al., 2016, "Deep networks with stochastic depth"): each residual block l of L
survives with probability p_l = 1 - (l / L)(1 - p_L), the paper's linear decay rule (its experiments use
p_L = 0.5; the paper is not in shared/papers); a dropped block passes only its shortcut. One draw per block
per mini-batch (a CPU scalar from torch's global RNG: no device sync), as the paper drops whole blocks.
The surviving branch is scaled by 1 / p_l in training, so that evaluation is the identity (the paper instead scales by p_l at test time: the same expectation).

DropBlock (Ghiasi, Lin & Le, 2018): block centres are drawn with rate
gamma = (1 - keep_prob) / block_size² · feat_size² / (feat_size - block_size + 1)² in the region where a
whole block fits, one mask per sample and channel; every unit within a block of a centre is zeroed and
the rest rescaled by count(mask) / count_ones(mask). Identity in evaluation. Both draw from torch's global
RNG, which the training loop seeds every epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_float
from msda_cli.errors import MsdaError


def linear_survival(index: int, total: int, last: float) -> float:
    """p_l of block `index` (1-based) of `total`: 1 - (l / L)(1 - p_L)."""
    return 1.0 - index / total * (1.0 - last)


def stochastic_residual(shortcut: torch.Tensor, branch, survival: float, training: bool) -> torch.Tensor:
    """shortcut + branch() with the block kept with probability `survival` (one draw for the batch), the
    kept branch scaled by 1 / survival; in evaluation shortcut + branch()."""
    if not training or survival >= 1.0:
        return shortcut + branch()
    if torch.rand(()) >= survival:
        return shortcut
    return shortcut + branch() / survival


def dropblock_gamma(keep_prob: float, block_size: int, height: int, width: int) -> float:
    """Ghiasi et al.'s eq. (1), for a height × width map (feat_size² read as height·width)."""
    valid = (height - block_size + 1) * (width - block_size + 1)
    return (1.0 - keep_prob) / block_size**2 * height * width / valid


def dropblock_mask(shape, keep_prob: float, block_size: int, device=None) -> torch.Tensor:
    """The keep mask (1 kept, 0 dropped) of shape [B, C, H, W]: centres where a whole block fits."""
    b, c, h, w = shape
    size = min(block_size, h, w)
    gamma = dropblock_gamma(keep_prob, size, h, w)
    centres = (torch.rand(b, c, h - size + 1, w - size + 1, device=device) < gamma).float()
    # a centre at (i, j) of the valid region drops rows i..i+size-1, columns j..j+size-1
    centres = F.pad(centres, (size - 1, size - 1, size - 1, size - 1))
    return 1.0 - F.max_pool2d(centres, size, stride=1)


class DropBlock(nn.Module):
    def __init__(self, keep_prob: float = 0.9, block_size: int = 3):
        super().__init__()
        keep_prob = check_float("DropBlock keep_prob", keep_prob, min=0, max=1, open="min")
        if int(block_size) != block_size or block_size < 1:
            raise MsdaError(f"DropBlock block_size must be a positive integer, got {block_size}")
        self.keep_prob, self.block_size = float(keep_prob), int(block_size)

    def forward(self, x):
        if not self.training or self.keep_prob >= 1.0:
            return x
        mask = dropblock_mask(x.shape, self.keep_prob, self.block_size, device=x.device).to(x.dtype)
        return x * mask * (mask.numel() / mask.sum().clamp(min=1.0))

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}, block_size={self.block_size}"
