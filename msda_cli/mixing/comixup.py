"""Co-Mixup (Kim, Choo, Jeong & Song, "Co-Mixup: Saliency Guided Joint Mixup with Supermodular
Diversity", ICLR 2021), after the authors' code (snu-mllab/Co-Mixup, `mixup.py`, `match.py`, `main.py`).

The batch is cut into partitions of `part` inputs; each partition of n inputs makes n outputs on a
g × g block grid (g = `block_num`). Every block of every output is labelled with one input (or, after
the first round, half of two), minimizing the authors' objective

  Σ_o Σ_p [−ŝ_{l_op}(p) − η'·log α_{l_op}]            saliency (ŝ: block-pooled, sum 1 per input) and
                                                      a Dirichlet(`alpha`) prior α drawn per partition
  + β'·Σ_o Σ_(p,q) [l_op ≠ l_oq]                      label smoothness (submodular)
  + γ'·Σ_{o ≠ o'} c_oᵀ A c_o'  (thresholded at τ')    diversity: c_o the input counts of output o,
                                                      A = (1 − ω)·I + ω·A_dist the input compatibility

with β', γ', η', τ' = `beta`, `gamma`, `eta`, `thres` divided (τ multiplied) by g², and A_dist the
L1 distance between the inputs' most salient 8 × 8 windows, normalized to mean 1 over the partition.
As in the authors' `get_onehot_matrix`, the supermodular diversity term is made modular around the
other outputs (output o sees 2γ'·[A·c_rest > τ']·A·c_rest per input) and the outputs are optimized
in turn, `niter` rounds from a random labelling, each by one multi-label graph cut (α-β swap,
`msda_cli.mixing.graphcut` on PyMaxflow; the authors use gco's swap). From the second round an
output that uses two inputs may also label a block "half of each", one that uses three or more
the three pairs of its three most used inputs (cost: the mean of the two costs − 5·10⁻⁴; 0.25
smoothness against either member), and before the last round outputs with the same input set get
a unit cost on one of their inputs (`set_resolve`). A round that changes the authors'
unthresholded objective by less than 10⁻⁶ (relative) ends the loop.

The mix: output o = Σ_i W_oi ⊙ x_i with the block weights W upsampled (nearest) to the image;
its label is Σ_i share_oi·y_i with share_oi = mean(W_oi), the pixel share each input realizes.
`index` [K, B] lists each output's partition (row 0 the output's own position, K = the largest
partition) and `shares` [B, K] their shares; `lam` = shares[:, 0].

The saliency pass and the clean-input term are PuzzleMix's (`gradient_saliency`: the input gradient
of the clean cross-entropy, sqrt of the channel mean of its square); loss = soft cross-entropy on
the mix + 2·clean_lam·CE(clean) (the authors: BCE on the softmax + 2·clean_lam·CE/C, the same
relative weight). `mix()` without a model uses the spectral-residual saliency as a stand-in.

Defaults: the authors' CIFAR-100 PreActResNet-18 command (README: `--m_part 20 --m_block_num 4
--mixup_alpha 2.0 --clean_lam 1.0 --m_beta 0.32 --m_gamma 1.0 --m_thres 0.83 --m_eta 0.05
--m_omega 0.001`) and `main.py`'s defaults for the rest (`--m_niter 4`, `--m_thres_type hard`,
`--set_resolve True`). The graph cuts run per output on the CPU; the saliency pooling, the
compatibility matrix and the mix run batched on the device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from msda_cli.checks import check_choice, check_float, check_int
from msda_cli.errors import MsdaError
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import LossOutput, Mixer, MixOutput, label_mix, soft_cross_entropy, to_device
from msda_cli.mixing.puzzlemix import BLOCK_NUMS, check_bool, gradient_saliency, stand_in_saliency

SOFT_BONUS = 5e-4  # authors' graphcut_wrapper: a half-half label costs the mean of its two costs − 5e-4
SOFT_SMOOTH = 0.25  # its smoothness cost against either of its two inputs (1 against any other label)
PAIRS = np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])  # halves of (a0, a1), (a0, a2), (a1, a2)
PAIR_SMOOTH = np.array([[SOFT_SMOOTH, SOFT_SMOOTH, 1.0], [SOFT_SMOOTH, 1.0, SOFT_SMOOTH],
                        [1.0, SOFT_SMOOTH, SOFT_SMOOTH]])  # pair label e against the three inputs
PEAK_WINDOW = 8  # authors' main.py: the most salient location is the argmax of an 8 × 8 average pool
PRIOR_EPS = 1e-8
STOP_REL = 1e-6  # authors' relative-change stop


def objective(cost: np.ndarray, onehot: np.ndarray, beta: float, gamma: float) -> float:
    """The authors' unthresholded `obj_fn`: cost [n, g, g], onehot [n_out, g, g, n] (block weights)."""
    counts = onehot.reshape(onehot.shape[0], -1, onehot.shape[-1]).sum(1)  # [n_out, n]
    data = float((cost.transpose(1, 2, 0)[None] * onehot).sum())
    smooth = ((onehot[:, :-1] - onehot[:, 1:]) ** 2).sum() + ((onehot[:, :, :-1] - onehot[:, :, 1:]) ** 2).sum()
    diversity = (counts.sum(0) ** 2).sum() - (counts ** 2).sum()
    return data + beta / 2 * float(smooth) + gamma * float(diversity)


def output_labelling(cost: np.ndarray, counts: np.ndarray, beta: float, extend: bool) -> np.ndarray:
    """One output's block weights [g, g, n] from its per-input costs cost [g, g, n] (the authors'
    `graphcut_wrapper`): a swap over the n inputs, plus half-half labels when `extend` and the output's
    current counts use two inputs (one pair) or more (the pairs of its three most used)."""
    from msda_cli.mixing.graphcut import swap_grid

    g, _, n = cost.shape
    used = np.flatnonzero(counts > 0)
    if extend and used.size >= 3:
        used = np.sort(np.argsort(-counts, kind="stable")[:3])  # authors: torch.topk; ties here: the lower index
        halves = PAIRS
    elif extend and used.size == 2:
        halves = np.array([[0.5], [0.5]])
    else:
        halves = np.zeros((0, 0))
    m = halves.shape[1]
    extra = cost[:, :, used] @ halves - SOFT_BONUS if m else np.zeros((g, g, 0))
    pairwise = 1.0 - np.eye(n + m)
    if m == 1:
        pairwise[n, used] = pairwise[used, n] = SOFT_SMOOTH
    elif m == 3:
        pairwise[n:, used] = PAIR_SMOOTH
        pairwise[np.ix_(used, np.arange(n, n + 3))] = PAIR_SMOOTH
    w_v = np.full((g - 1, g), beta)
    w_h = np.full((g, g - 1), beta)
    labels = swap_grid(np.concatenate([cost, extra], axis=-1), pairwise, w_v, w_h)
    weights = np.zeros((n + m, n))
    weights[np.arange(n), np.arange(n)] = 1.0
    if m:
        weights[n:, used] = halves.T
    return weights[labels]


def co_labelling(cost: np.ndarray, A: np.ndarray, init: np.ndarray, prior: np.ndarray, beta: float, gamma: float,
                 eta: float, thres: float, thres_type: str, niter: int, set_resolve: bool) -> np.ndarray:
    """The authors' `get_onehot_matrix` for one partition: block weights [n_out, g, g, n].

    cost [n, g, g] (−normalized saliency), A [n, n], init [n_out, g, g] labels, prior [n] Dirichlet draw.
    """
    n, g, _ = cost.shape
    area = g * g
    beta, gamma, eta, thres = beta / area, gamma / area, eta / area, thres * area
    cost = cost - eta * np.log(prior + PRIOR_EPS)[:, None, None]
    onehot = np.eye(n)[init]  # [n_out, g, g, n]
    n_out = onehot.shape[0]
    extra_cost = None
    before = objective(cost, onehot, beta, gamma)
    total = onehot.reshape(n_out, -1, n).sum((0, 1))
    for it in range(niter):
        for o in range(n_out):
            mine = onehot[o].reshape(-1, n).sum(0)
            rest = A @ (total - mine)
            if thres_type == "hard":
                modular = 2 * gamma * (rest > thres) * rest
            else:
                modular = 2 * gamma * (rest > thres) * (rest - thres)
            unary = cost.transpose(1, 2, 0) + modular
            if extra_cost is not None:
                unary = unary + gamma * extra_cost[o]
            onehot[o] = output_labelling(unary, mine, beta, extend=it > 0)
            total = total - mine + onehot[o].reshape(-1, n).sum(0)
        if it == niter - 2 and set_resolve:
            extra_cost = resolve_sets(onehot.reshape(n_out, -1, n).sum(1) > 0)
        after = objective(cost, onehot, beta, gamma)
        if abs(before - after) / max(abs(after), 1e-300) < STOP_REL:
            break
        before = after
    return onehot


def resolve_sets(used: np.ndarray) -> np.ndarray:
    """The authors' `resolve_label`: for two outputs with the same input set (of ≥ 2 inputs), a unit cost
    on the first of them for the first output and on the second for the other. used: [n_out, n] bool."""
    extra = np.zeros(used.shape)
    same = (used[:, None, :] == used[None, :, :]).all(-1)
    for i1, i2 in zip(*np.nonzero(np.triu(same, k=1))):
        members = np.flatnonzero(used[i1])
        if members.size > 1:
            extra[i1, members[0]] = 1.0
            extra[i2, members[1]] = 1.0
    return extra


def compatibility(sal: torch.Tensor) -> torch.Tensor:
    """A_dist [B, B]: L1 distance between the (row, col) of each input's most salient 8 × 8 window."""
    k = min(PEAK_WINDOW, sal.shape[-2], sal.shape[-1])
    z = F.avg_pool2d(sal.float().unsqueeze(1), kernel_size=k, stride=1).squeeze(1)
    flat = z.flatten(1).argmax(1)
    peak = torch.stack([flat // z.shape[-1], flat % z.shape[-1]], 1).float()
    return (peak.unsqueeze(1) - peak.unsqueeze(0)).abs().sum(-1)


def partitions(B: int, part: int) -> list[tuple[int, int]]:
    return [(s, min(part, B - s)) for s in range(0, B, part)]


@register_mixer("comixup", label="Co-Mixup")
class CoMixup(Mixer):
    """Co-Mixup: `alpha` (Dirichlet prior), `beta` (smoothness), `gamma` (diversity), `eta` (prior weight),
    `omega` (input compatibility), `thres` (τ, diversity threshold), `thres_type` (hard | soft),
    `block_num` (grid side; −1: uniform over 2, 4, 8, 16 per batch), `part` (inputs per partition),
    `niter` (rounds), `set_resolve`, `clean_lam` (clean-input term)."""

    image_only = True

    def __init__(self, alpha: float = 2.0, beta: float = 0.32, gamma: float = 1.0, eta: float = 0.05,
                 omega: float = 0.001, thres: float = 0.83, thres_type: str = "hard", block_num: int = 4,
                 part: int = 20, niter: int = 4, set_resolve: bool = True, clean_lam: float = 1.0,
                 smoothing: float = 0.0):
        super().__init__(smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.beta = check_float("beta", beta, min=0)
        self.gamma = check_float("gamma", gamma, min=0)
        self.eta = check_float("eta", eta, min=0)
        self.omega = check_float("omega", omega, min=0, max=1)
        self.thres = check_float("thres", thres, min=0)
        self.thres_type = check_choice("thres_type", thres_type, ("hard", "soft"))
        self.block_num = check_int("block_num", block_num, min=-1)
        if self.block_num in (0, 1):
            raise MsdaError(f"block_num must be ≥ 2 (the grid side) or -1 (drawn per batch), got {block_num}")
        self.part = check_int("part", part, min=1)
        self.niter = check_int("niter", niter, min=1)
        self.set_resolve = check_bool("set_resolve", set_resolve)
        self.clean_lam = check_float("clean_lam", clean_lam, min=0)

    def draw(self, shape, generator=None, lam=None) -> dict:
        """The random draws: the grid side, and per partition the Dirichlet prior and the initial labels.
        `lam` does not apply (the shares come out of the optimization) and is ignored."""
        from msda_cli.mixing.sampling import dirichlet

        B, H, W = shape[0], shape[-2], shape[-1]
        g = self.block_num
        if g == -1:
            g = BLOCK_NUMS[int(torch.randint(0, len(BLOCK_NUMS), (1,), generator=generator))]
        g = max(1, min(g, H, W))
        priors, inits = [], []
        for _, n in partitions(B, self.part):
            priors.append(dirichlet([self.alpha] * n, 1, generator)[0].numpy())
            inits.append(torch.randint(0, n, (n, g, g), generator=generator).numpy())
        return {"block_num": g, "priors": priors, "inits": inits}

    def block_weights(self, x: torch.Tensor, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights [B, K, g, g] of each output's sources on the block grid, index [K, B]) on x's device."""
        B = x.shape[0]
        g = params["block_num"]
        sal = params.get("saliency")
        if sal is None:
            sal = stand_in_saliency(x)
        pooled = F.adaptive_avg_pool2d(sal.float().unsqueeze(1), (g, g)).squeeze(1)
        pooled = pooled / pooled.flatten(1).sum(1).clamp_min(1e-12).view(-1, 1, 1)
        dist = compatibility(sal)
        pooled, dist = pooled.double().cpu().numpy(), dist.double().cpu().numpy()
        K = min(self.part, B)
        weights = np.zeros((B, K, g, g))
        index = np.tile(np.arange(B), (K, 1))
        for (s, n), prior, init in zip(partitions(B, self.part), params["priors"], params["inits"]):
            d = dist[s:s + n, s:s + n]
            A = (1 - self.omega) * np.eye(n) + self.omega * d / max(d.sum(), 1e-300) * n
            onehot = co_labelling(-pooled[s:s + n], A, init, prior, self.beta, self.gamma, self.eta, self.thres,
                                  self.thres_type, self.niter, self.set_resolve)  # [n, g, g, n]
            for k in range(n):  # row k of output o is input s + (o + k) mod n: row 0 the output's own position
                sources = (np.arange(n) + k) % n
                index[k, s:s + n] = s + sources
                weights[s:s + n, k] = onehot[np.arange(n), :, :, sources]
        return (to_device(torch.from_numpy(weights).float(), x.device),
                to_device(torch.from_numpy(index), x.device))

    def apply(self, x, y, num_classes, params) -> MixOutput:
        B, C, H, W = x.shape
        blocks, index = self.block_weights(x, params)
        K = index.shape[0]
        weights = F.interpolate(blocks, size=(H, W), mode="nearest")  # [B, K, H, W]
        parts = x.index_select(0, index.reshape(-1)).reshape(K, B, C, H, W).transpose(0, 1)
        x_mix = (weights.unsqueeze(2) * parts).sum(1).to(x.dtype)
        shares = weights.flatten(2).double().mean(-1).float()
        target = label_mix(y, num_classes, self.smoothing, index, shares)
        sources = lambda: weights.argmax(1, keepdim=True).to(torch.uint8)  # noqa: E731  the larger half of a pair
        return MixOutput(x_mix, target, shares[:, 0], None, index, shares, sources)

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        self.check_input(x)
        params = self.draw(tuple(x.shape), generator=generator)
        params["saliency"], _, clean = gradient_saliency(model, x, y, self.clean_lam)
        out = self.apply(x, y, num_classes, params)
        logits = model(out.x)
        mixed = soft_cross_entropy(logits, out.y)
        total = mixed if clean is None else mixed + clean
        return LossOutput(total, logits, mixed.detach())
