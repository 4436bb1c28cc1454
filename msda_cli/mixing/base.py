"""The mixing contract shared by every method.

A mixer takes a batch `x` in pixel space and integer labels `y` and returns `MixOutput`.
All random numbers are drawn on the CPU from `generator` (a CPU `torch.Generator`, or the
global CPU RNG when None); there are only O(B·K) of them. They are then moved to `x.device`,
where masks are built and blended, so draws are identical on CPU and GPU and the step needs
no host sync.

Every mixer is split in two halves:

- `draw(shape, generator, lam) -> dict` — the random draws, CPU tensors only (λ, partner
  permutations, box corners …). Deterministic for a given generator state.
- `apply(x, y, num_classes, params) -> MixOutput` — builds masks on `x.device` and blends.

`mixer(x, y, num_classes=C, generator=g, lam=None)` is `apply(draw(...))`. The split lets
the preview choose the partners and lets tests reproduce a draw exactly.

Conventions: `params["index"]` is a [K, B] long tensor: row 0 is `arange(B)` (each sample's
own image), row k the k-th partner (`K = 2` for two-image methods). `mask_mode` `batch`
draws one mask for the whole batch (the authors' code), `sample` one per sample; `n` below
is 1 or B accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from msda_cli.checks import check_choice, check_float
from msda_cli.errors import MsdaError


class MixOutput:
    """What a mixer returns.

    x       mixed inputs, same shape/dtype/device as the input batch
    y       soft targets [B, C], rows sum to 1
    lam     [B] realized weight of each sample's own image/label
    mask    [B,1,H,W] weight of x in the mix (two-image methods; [B,1] for tabular), else None
    index   [K,B] source images: row 0 = arange(B), row k = the k-th partner
    shares  [B,K] realized label weight of each source (rows sum to 1)
    sources [B,1,H,W] uint8: the row of `index` each pixel comes from (K-image cut methods)

    `mask` and `sources` may be built lazily (on first access), since a training step never
    reads them: a mixer may pass a zero-argument function instead of a tensor.
    """

    __slots__ = ("x", "y", "lam", "_mask", "index", "shares", "_sources")

    def __init__(self, x, y, lam, mask=None, index=None, shares=None, sources=None):
        self.x, self.y, self.lam = x, y, lam
        self._mask, self.index, self.shares, self._sources = mask, index, shares, sources

    @property
    def mask(self) -> torch.Tensor | None:
        if callable(self._mask):
            self._mask = self._mask()
        return self._mask

    @mask.setter
    def mask(self, value) -> None:
        self._mask = value

    @property
    def sources(self) -> torch.Tensor | None:
        if callable(self._sources):
            self._sources = self._sources()
        return self._sources

    @sources.setter
    def sources(self, value) -> None:
        self._sources = value

    def __repr__(self) -> str:
        return f"MixOutput(x={tuple(self.x.shape)}, y={tuple(self.y.shape)}, lam={self.lam})"


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


MASK_MODES = ("batch", "sample")


def lam_tensor(lam, n: int) -> torch.Tensor:
    """A fixed λ (float, or a tensor of n values) as float64 CPU [n]; MsdaError outside [0, 1]."""
    t = torch.as_tensor(lam, dtype=torch.float64).detach().cpu().flatten()
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise MsdaError(f"lam must be one number or {n} numbers, got {t.numel()}")
    outside = t[~((t >= 0) & (t <= 1))]
    if outside.numel():
        check_float("lam", outside[0].item(), min=0, max=1)
    return t


def to_device(t: torch.Tensor, device, dtype=None) -> torch.Tensor:
    """Move a CPU draw to the batch's device without a host sync."""
    return t.to(device=device, dtype=dtype, non_blocking=True)


def label_mix(y, num_classes: int, smoothing: float, index: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """Soft targets Σ_k shares[:, k] · onehot(y[index[k]]); index [K,B] and shares [B,K] on y's device.

    Integer labels without smoothing: the shares are added into a zero [B, C] table, one
    `scatter_add_` per source (each row gets one element per call, so the order of the sum is
    fixed, also on CUDA). A one-hot row holds only 0 and 1, so this is bitwise the sum
    Σ_k share_k · onehot_k in the same order, without K one-hot gathers and products.
    """
    if y.dim() == 1 and not smoothing:
        shares = shares.to(torch.float32)
        classes = y.long().take(index).T  # [B, K]: class of each source
        out = torch.zeros(shares.shape[0], num_classes, dtype=torch.float32, device=shares.device)
        for k in range(index.shape[0]):
            out.scatter_add_(1, classes[:, k:k + 1], shares[:, k:k + 1])
        return out
    target = one_hot(y, num_classes, smoothing)
    out = shares[:, :1].to(target.dtype) * target[index[0]]
    for k in range(1, index.shape[0]):
        out = out + shares[:, k:k + 1].to(target.dtype) * target[index[k]]
    return out


class Mixer:
    """Base class: subclasses implement `draw` and `apply`; `loss` is one training step's loss.

    `smoothing` (label smoothing) is an option of every method.
    """

    name = "base"
    image_only = False  # mask methods need [B, C, H, W] input

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = check_float("smoothing", smoothing, min=0, max=1, open="max")

    def hparams(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{type(self).__name__}({args})"

    def __call__(self, x, y, num_classes: int, generator: torch.Generator | None = None, lam=None) -> MixOutput:
        return self.mix(x, y, num_classes, generator=generator, lam=lam)

    def mix(self, x, y, num_classes, generator=None, lam=None) -> MixOutput:
        self.check_input(x)
        params = self.draw(tuple(x.shape), generator=generator, lam=lam)
        return self.apply(x, y, num_classes, params)

    def check_input(self, x: torch.Tensor) -> None:
        if not torch.is_tensor(x):  # a graph batch: only a representation can be mixed (mixing/hidden.py)
            raise MsdaError(f"method {self.name!r} mixes tensors, not {type(x).__name__} inputs: graphs train "
                            "with a method that mixes a representation (mixing/hidden.py)")
        if self.image_only and x.dim() != 4:
            raise MsdaError(f"method {self.name!r} mixes images [B, C, H, W]; got input of shape {tuple(x.shape)}")
        if x.shape[0] < 1:
            raise MsdaError("cannot mix an empty batch")

    def draw(self, shape: tuple, generator: torch.Generator | None = None, lam=None) -> dict:
        return {}

    def apply(self, x, y, num_classes: int, params: dict) -> MixOutput:
        raise NotImplementedError

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        """Mix, forward, soft-target cross-entropy. Methods that need the model override this."""
        out = self(x, y, num_classes, generator=generator)
        logits = model(out.x)
        return LossOutput(soft_cross_entropy(logits, out.y), logits)


class TwoImageMixer(Mixer):
    """Two-image methods: x̃ = M⊙x + (1−M)⊙x[π], ỹ = λ·y + (1−λ)·y[π] with λ = mean(M)."""

    def __init__(self, mask_mode: str = "batch", smoothing: float = 0.0):
        super().__init__(smoothing)
        self.mask_mode = check_choice("mask_mode", mask_mode, MASK_MODES)

    def num_masks(self, B: int) -> int:
        return 1 if self.mask_mode == "batch" else B

    def draw_lam(self, alpha: float, n: int, generator, lam) -> torch.Tensor:
        from msda_cli.mixing.sampling import beta

        return lam_tensor(lam, n) if lam is not None else beta(alpha, alpha, n, generator)

    def draw_pair(self, alpha: float, B: int, generator, lam) -> dict:
        """What every two-image draw starts with: λ ~ Beta(α, α) per mask, then the partner permutation."""
        lam = self.draw_lam(alpha, self.num_masks(B), generator, lam)
        perm = torch.randperm(B, generator=generator)
        return {"lam": lam, "index": torch.stack([torch.arange(B), perm])}

    def finish(self, x, y, num_classes: int, index: torch.Tensor, x_mix: torch.Tensor, mask: torch.Tensor,
               realized: torch.Tensor | None = None, own_weight: torch.Tensor | None = None) -> MixOutput:
        """Assemble the output from the mixed batch and the weight-of-x mask M [n,1,H,W] (float).

        The label weight is the realized mean of M: computed in float64 on the device, or passed
        as `realized` [n] when the method knows it exactly from its geometry (box areas, pixel
        counts; bitwise the same number, without a pass over the mask). `own_weight` overrides
        it (only Cutout: its label stays the sample's own).
        """
        B = x.shape[0]
        index = to_device(index, x.device)
        if own_weight is not None:
            lam = own_weight
        elif realized is not None:
            lam = to_device(realized, x.device).float()
        else:
            mask = mask() if callable(mask) else mask
            lam = mask.flatten(1).double().mean(1).float()
        lam = lam.expand(B) if lam.shape[0] == 1 else lam
        shares = torch.stack([lam, 1.0 - lam], dim=1)
        target = label_mix(y, num_classes, self.smoothing, index, shares)
        return MixOutput(x_mix, target, lam, lambda: expand_batch(mask() if callable(mask) else mask, B),
                         index, shares)


def expand_batch(t: torch.Tensor, B: int) -> torch.Tensor:
    """A per-batch [1, ...] tensor as a [B, ...] view (per-sample tensors pass through)."""
    return t.expand(B, *t.shape[1:]) if t.shape[0] == 1 and B != 1 else t


class ImageMixer(TwoImageMixer):
    image_only = True
