"""PuzzleMix (Kim, Choo & Song, "Puzzle Mix: Exploiting Saliency and Local Statistics for Optimal
Mixup", ICML 2020), after the authors' code (snu-mllab/PuzzleMix, `mixup.py` and `main.py`).

One training step:

1. Saliency pass: forward the clean batch, cross-entropy, gradient with respect to the input;
   saliency s = sqrt(mean over channels of grad²) per pixel (the authors' `unary`). With
   `clean_lam` 0 this pass runs in eval mode and only gives the saliency; with `clean_lam` > 0 it
   runs in train mode and its loss is trained too (the clean-input term, below). This second
   forward and backward is what makes PuzzleMix cost about twice a Mixup step.
2. A block grid n × n, n uniform over {2, 4, 8, 16} (`block_num = 2**np.random.randint(1, 5)`;
   here among those that divide the image sides; none: no mixing, the authors' `block_num = 1`
   case), one λ ~ Beta(α, α) per batch and a partner permutation π.
3. The mask by graph cuts: every block takes one of `n_labels` values m ∈ {1, …, 1/(L−1), 0}
   (the weight of the sample's own image), minimizing
   Σ_p [m_p·u'_π(p) + (1 − m_p)·u'_own(p) + prior(m_p)] + Σ_(p,q) (β' + pw_pq)·(l_p − l_q)²/(L−1)²
   with u the block-pooled saliency normalized to sum 1 per image, the prior
   η/n² · −log(binom(L−1, j) λ^(L−1−j) (1−λ)^j) of label j, β' = β/n/16, and the data smoothness
   terms (γ·β' times the mean absolute difference of the `neigh_size`-pooled pixels on both sides
   of a block edge, for each of the four own/partner combinations) split into unary parts and a
   pairwise part exactly as the authors' code does. Solved per image on the CPU by α-β swap
   (`msda_cli.mixing.graphcut`, on PyMaxflow's max-flow; the authors use gco's swap).
4. Adversarial perturbation (`adv_p` > 0): two coins with probability `adv_p` choose whether the
   own image and the partner get noise; the noise starts uniform in ±`adv_eps`/255, the saliency
   pass runs on the noisy input, one FGSM step of size (adv_eps + 2)/255 follows, projected to
   ±adv_eps/255 and scaled by a U(0, 1) draw, and is added (clipped to [0, 1]) before the mix.
5. Optimal transport (`transport`): on a grid of `t_size`-pixel blocks the authors' greedy
   transport plan (cost t_eps·‖i − j‖²/(grid − 1)² − saliency_i·[mask_j > 0], rows choose their
   cheapest column, ties in a column go to the cheapest row, losers pay +1, `grid` rounds) moves
   the salient blocks of each source under its mask; it runs batched on the device.
6. x̃ = M⊙x₁ + (1 − M)⊙x₂ with the block mask M upsampled; the label weight is mean(M), the share
   the mask realizes.

Loss: soft cross-entropy on the mix, plus 2·clean_lam·CE(clean) when `clean_lam` > 0. The authors
train with BCE on the softmax (mean over B·C entries, about CE/C) and add 2·clean_lam·CE/C: the same
relative weight of the clean term is 2·clean_lam against a cross-entropy mixed loss. The logged
loss (`value`) is the mixed term, as the authors log it. The saliency pass takes the input gradient
only (no parameter gradients; with `clean_lam` > 0 its graph is kept and backpropagated again by the
step's one backward, where the authors accumulate both in one): one forward and one input backward
more than a Mixup step.

Defaults are the authors' CIFAR-100 PreActResNet-18 command (README "Puzzle Mix with
PreActResNet18": `--mixup_alpha 1.0 --n_labels 3 --eta 0.2 --beta 1.2 --gamma 0.5 --neigh_size 4
--transport True --t_size 4 --t_eps 0.8`), with `adv_p` 0, `adv_eps` 10 and `clean_lam` 0 from
`main.py`'s argparse defaults (the adversarial command adds `--adv_p 0.1 --adv_eps 10.0`).

`mix()` without a model has no input gradient: it uses the spectral-residual saliency of the image
(`msda_cli.mixing.saliency`) as a model-free stand-in and no adversarial noise (the preview and the
contract tests); training always uses the gradient saliency.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from msda_cli.checks import check_float, check_int
from msda_cli.errors import MsdaError
from msda_cli.mixing import register_mixer
from msda_cli.mixing.base import LossOutput, Mixer, MixOutput, label_mix, lam_tensor, soft_cross_entropy, to_device

BLOCK_NUMS = (2, 4, 8, 16)  # authors: block_num = 2**np.random.randint(1, 5)
PRIOR_EPS = 1e-8  # authors' graphcut_multi eps
SALIENCY_EPS = 1e-12  # an all-zero saliency normalizes to zeros instead of NaN (the authors divide by 0)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise MsdaError(f"{name} must be true or false, got {value!r}")
    return value


def bare_module(model):
    """The module under DistributedDataParallel: the saliency pass must not start a DDP reduction."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def gradient_saliency(model, x: torch.Tensor, y: torch.Tensor, clean_lam: float):
    """The saliency pass: (saliency [B, H, W], input gradient [B, C, H, W], clean term or None).

    clean_lam = 0: eval mode, only the input gradient (no parameter gradients). clean_lam > 0: train
    mode, and the clean term 2·clean_lam·CE(x) keeps its graph for the step's one backward.
    """
    net = bare_module(model)
    was_training = net.training
    if not clean_lam:
        net.eval()
    try:
        with torch.enable_grad():
            x_var = x.detach().requires_grad_(True)
            ce = F.cross_entropy(net(x_var).float(), y.long())
            (grad,) = torch.autograd.grad(ce, x_var, retain_graph=bool(clean_lam))
    finally:
        net.train(was_training)
    saliency = grad.float().square().mean(dim=1).sqrt()
    return saliency, grad, (2.0 * clean_lam * ce if clean_lam else None)


def stand_in_saliency(x: torch.Tensor) -> torch.Tensor:
    """Model-free saliency [B, h, w] for `mix()` without a model: the spectral residual."""
    from msda_cli.mixing.saliency import saliency_map

    return saliency_map(x)


def block_pool(sal: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Saliency [B, h, w] averaged over a grid of blocks, normalized to sum 1 per image: [B, gh, gw]."""
    pooled = F.adaptive_avg_pool2d(sal.float().unsqueeze(1), grid).squeeze(1)
    return pooled / pooled.flatten(1).sum(1).clamp_min(SALIENCY_EPS).view(-1, 1, 1)


def largest_divisor(size: int, bh: int, bw: int) -> int:
    """The largest s ≤ min(size, bh, bw) dividing both block sides (the authors' min(size, block_size))."""
    s = max(1, min(size, bh, bw))
    while bh % s or bw % s:
        s -= 1
    return s


def edge_penalties(a: torch.Tensor, b: torch.Tensor, kh: int, kw: int, n: int):
    """The authors' `neigh_penalty`: mean |a − b| of the pooled pixels facing each other across every block
    edge, a on the upper/left block, b on the lower/right one. a, b: [B, C, n·kh, n·kw].
    Returns (vertical edges [B, n−1, n], horizontal edges [B, n, n−1])."""
    B = a.shape[0]
    v = (a[:, :, :-1, :] - b[:, :, 1:, :])[:, :, kh - 1::kh, :].abs().mean(1)  # [B, n−1, n·kw]
    h = (a[:, :, :, :-1] - b[:, :, :, 1:])[:, :, :, kw - 1::kw].abs().mean(1)  # [B, n·kh, n−1]
    return v.reshape(B, n - 1, n, kw).mean(-1), h.reshape(B, n, kh, n - 1).mean(2)


def mask_energy_terms(x: torch.Tensor, perm: torch.Tensor, sal: torch.Tensor, n: int, lam: float, beta: float,
                      gamma: float, eta: float, neigh_size: int, n_labels: int):
    """The graph-cut energy of every sample's block mask: unary [B, n, n, L] (label j: weight of own image
    1 − j/(L−1)), edge weights w_v [B, n−1, n] and w_h [B, n, n−1], pairwise [L, L] (float64 NumPy)."""
    B, _, H, W = x.shape
    bh, bw = H // n, W // n
    beta_n = beta / n / 16  # authors: "normalize"
    u_own = block_pool(sal, (n, n)).double()
    u_partner = u_own[perm]
    neigh = largest_divisor(neigh_size, bh, bw)
    own = F.avg_pool2d(x.double(), neigh)
    partner = own[perm]
    kh, kw = bh // neigh, bw // neigh
    src = {1: own, 0: partner}  # 1: the sample's own image, 0: the partner
    pv, ph = {}, {}
    for i in (0, 1):
        for j in (0, 1):
            v, h = edge_penalties(src[i], src[j], kh, kw, n)
            pv[i, j], ph[i, j] = beta_n * gamma * v, beta_n * gamma * h
    # the four-way data term of each edge as unary halves plus one pairwise part (the authors' split)
    up_own, up_partner = u_own.clone(), u_partner.clone()
    up_partner[:, :-1, :] += (pv[1, 0] + pv[1, 1]) / 2
    up_own[:, :-1, :] += (pv[0, 1] + pv[0, 0]) / 2
    up_partner[:, 1:, :] += (pv[0, 1] + pv[1, 1]) / 2
    up_own[:, 1:, :] += (pv[1, 0] + pv[0, 0]) / 2
    up_partner[:, :, :-1] += (ph[1, 0] + ph[1, 1]) / 2
    up_own[:, :, :-1] += (ph[0, 1] + ph[0, 0]) / 2
    up_partner[:, :, 1:] += (ph[0, 1] + ph[1, 1]) / 2
    up_own[:, :, 1:] += (ph[1, 0] + ph[0, 0]) / 2
    w_v = (pv[1, 0] + pv[0, 1] - pv[1, 1] - pv[0, 0]) / 2 + beta_n
    w_h = (ph[1, 0] + ph[0, 1] - ph[1, 1] - ph[0, 0]) / 2 + beta_n
    L = n_labels
    j = torch.arange(L, dtype=torch.float64)
    binom = torch.tensor([math.comb(L - 1, int(k)) for k in j], dtype=torch.float64)
    prior = -torch.log(binom * lam ** (L - 1 - j) * (1 - lam) ** j + PRIOR_EPS) * eta / n ** 2
    m = (1 - j / (L - 1)).to(u_own.device)  # weight of the own image under label j
    unary = (m * up_partner.unsqueeze(-1) + (1 - m) * up_own.unsqueeze(-1) + prior.to(u_own.device))
    pairwise = ((j.view(-1, 1) - j.view(1, -1)) ** 2 / (L - 1) ** 2).numpy()
    return (unary.cpu().numpy(), w_v.clamp_min(0).cpu().numpy(), w_h.clamp_min(0).cpu().numpy(), pairwise)


def graphcut_masks(unary, w_v, w_h, pairwise) -> np.ndarray:
    """Per image on the CPU: the swap minimum of each energy, as label indices [B, n, n]."""
    from msda_cli.mixing.graphcut import swap_grid

    return np.stack([swap_grid(unary[i], pairwise, w_v[i], w_h[i]) for i in range(unary.shape[0])])


_COSTS: dict = {}


def transport_cost(th: int, tw: int, device) -> torch.Tensor:
    """[N, N] squared grid distance between blocks, over (grid side − 1)² (the authors' `cost_matrix`)."""
    key = (th, tw, str(device))
    if key not in _COSTS:
        idx = torch.arange(th * tw)
        r, c = (idx // tw).double(), (idx % tw).double()
        cost = ((r.view(-1, 1) - r.view(1, -1)) ** 2 + (c.view(-1, 1) - c.view(1, -1)) ** 2) / (max(th, tw) - 1) ** 2
        _COSTS[key] = cost.float().to(device)
    return _COSTS[key]


def transport_plan(mask: torch.Tensor, sal: torch.Tensor, eps: float) -> torch.Tensor:
    """The authors' `mask_transport`, batched: plan [B, N, N], plan[b, i, j] = 1 moves block i to block j.

    mask: [B, th, tw] (where the image shows: > 0), sal: [B, th, tw] normalized saliency.
    """
    B, th, tw = mask.shape
    N = th * tw
    z = (mask.reshape(B, 1, N) > 0).float()
    cost = eps * transport_cost(th, tw, mask.device).unsqueeze(0) - sal.reshape(B, N, 1).float() * z
    win = torch.zeros_like(cost)
    for _ in range(max(th, tw)):
        plan = torch.zeros_like(cost).scatter_(-1, cost.argmin(-1, keepdim=True), 1.0)
        col_best = (plan * cost).argmin(-2, keepdim=True)  # each column: its cheapest claimant
        win = torch.zeros_like(cost).scatter_(-2, col_best, 1.0) * plan
        cost = cost + (plan - win)  # the rows that lost their column pay 1 there
    return win


def move_blocks(img: torch.Tensor, plan: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Block j of the result = Σ_i plan[i, j]·block i of img [B, C, H, W] (the authors' `transport_image`)."""
    B, C, H, W = img.shape
    bh, bw = H // th, W // tw
    patches = img.reshape(B, C, th, bh, tw, bw).permute(0, 1, 2, 4, 3, 5).reshape(B, C, th * tw, bh, bw)
    out = torch.einsum("bij,bcihw->bcjhw", plan.to(img.dtype), patches)
    return out.reshape(B, C, th, tw, bh, bw).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H, W)


@register_mixer("puzzlemix", label="PuzzleMix")
class PuzzleMix(Mixer):
    """PuzzleMix: `alpha` (λ ~ Beta(α, α), the prior's mixing ratio), `beta` (label smoothness),
    `gamma` (data smoothness), `eta` (prior weight), `neigh_size` (pixels pooled for the data term),
    `n_labels` (mask values), `transport`, `t_eps` (transport cost weight), `t_size` (transport block
    side in pixels; −1: the graph-cut blocks), `adv_p`/`adv_eps` (adversarial noise), `clean_lam`."""

    image_only = True

    def __init__(self, alpha: float = 1.0, beta: float = 1.2, gamma: float = 0.5, eta: float = 0.2,
                 neigh_size: int = 4, n_labels: int = 3, transport: bool = True, t_eps: float = 0.8,
                 t_size: int = 4, adv_p: float = 0.0, adv_eps: float = 10.0, clean_lam: float = 0.0,
                 smoothing: float = 0.0):
        super().__init__(smoothing)
        self.alpha = check_float("alpha", alpha, min=0, open="min")
        self.beta = check_float("beta", beta, min=0)
        self.gamma = check_float("gamma", gamma, min=0)
        self.eta = check_float("eta", eta, min=0)
        self.neigh_size = check_int("neigh_size", neigh_size, min=1)
        self.n_labels = check_int("n_labels", n_labels, min=2)
        self.transport = check_bool("transport", transport)
        self.t_eps = check_float("t_eps", t_eps, min=0)
        self.t_size = check_int("t_size", t_size, min=-1)
        if self.t_size == 0:
            raise MsdaError("t_size must be a block side in pixels (≥ 1) or -1 (the graph-cut blocks), got 0")
        self.adv_p = check_float("adv_p", adv_p, min=0, max=1)
        self.adv_eps = check_float("adv_eps", adv_eps, min=0)
        self.clean_lam = check_float("clean_lam", clean_lam, min=0)

    def draw(self, shape, generator=None, lam=None) -> dict:
        from msda_cli.mixing.sampling import beta

        B, H, W = shape[0], shape[-2], shape[-1]
        choices = [n for n in BLOCK_NUMS if H % n == 0 and W % n == 0]
        pick = int(torch.randint(0, len(choices), (1,), generator=generator)) if choices else None
        lam = lam_tensor(lam, 1) if lam is not None else beta(self.alpha, self.alpha, 1, generator)
        perm = torch.randperm(B, generator=generator)
        adv = torch.rand(2, generator=generator, dtype=torch.float64) < self.adv_p  # own image, partner
        params = {"block_num": choices[pick] if choices else 1, "lam": lam,
                  "index": torch.stack([torch.arange(B), perm]), "adv": adv}
        if bool(adv.any()):
            eps = self.adv_eps / 255.0
            params["noise_start"] = (torch.rand(tuple(shape), generator=generator) * 2 - 1) * eps
            params["adv_coef"] = torch.rand(1, generator=generator, dtype=torch.float64)
        return params

    def apply(self, x, y, num_classes, params) -> MixOutput:
        B, C, H, W = x.shape
        index = to_device(params["index"], x.device)
        perm = index[1]
        n = params["block_num"]
        if n == 1:  # no block grid fits the image: the authors' unmixed case
            ones = torch.ones(B, device=x.device)
            shares = torch.stack([ones, 1 - ones], 1)
            target = label_mix(y, num_classes, self.smoothing, index, shares)
            return MixOutput(x.clone(), target, ones, torch.ones(B, 1, H, W, device=x.device), index, shares)
        sal = params.get("saliency")
        if sal is None:
            sal = stand_in_saliency(x)
        lam = float(params["lam"][0])
        unary, w_v, w_h, pairwise = mask_energy_terms(x, perm, sal, n, lam, self.beta, self.gamma, self.eta,
                                                      self.neigh_size, self.n_labels)
        labels = graphcut_masks(unary, w_v, w_h, pairwise)
        blocks = 1.0 - torch.from_numpy(labels).float() / (self.n_labels - 1)
        blocks = to_device(blocks, x.device).unsqueeze(1)  # [B, 1, n, n] weight of the own image
        x1, x2 = x, x.index_select(0, perm)
        noise = params.get("noise")
        if noise is not None and bool(params["adv"][0]):
            x1 = (x1 + noise).clamp(0, 1)
        if noise is not None and bool(params["adv"][1]):
            x2 = (x2 + noise.index_select(0, perm)).clamp(0, 1)
        if self.transport:
            t = largest_divisor(self.t_size, H // n, W // n) if self.t_size != -1 else None
            grid = (n, n) if t is None else (H // t, W // t)
            if grid == (n, n):
                t_mask, t_sal = blocks[:, 0], block_pool(sal, (n, n))
            else:
                t_mask = F.interpolate(blocks, size=grid, mode="nearest")[:, 0]
                t_sal = block_pool(sal, grid)
            x1 = move_blocks(x1, transport_plan(t_mask, t_sal, self.t_eps), *grid)
            x2 = move_blocks(x2, transport_plan(1 - t_mask, t_sal.index_select(0, perm), self.t_eps), *grid)
        mask = F.interpolate(blocks, size=(H, W), mode="nearest")
        x_mix = (mask * x1 + (1 - mask) * x2).to(x.dtype)
        lam_real = mask.flatten(1).double().mean(1).float()
        shares = torch.stack([lam_real, 1 - lam_real], 1)
        target = label_mix(y, num_classes, self.smoothing, index, shares)
        return MixOutput(x_mix, target, lam_real, mask, index, shares)

    def loss(self, model, x, y, num_classes: int, generator: torch.Generator | None = None) -> LossOutput:
        self.check_input(x)
        params = self.draw(tuple(x.shape), generator=generator)
        x_in = x
        if "noise_start" in params:  # the random start of the adversarial noise, inside the image
            x_in = (x + to_device(params["noise_start"], x.device, x.dtype)).clamp(0, 1)
        params["saliency"], grad, clean = gradient_saliency(model, x_in, y, self.clean_lam)
        if "noise_start" in params:
            eps = self.adv_eps / 255.0
            step = (self.adv_eps + 2.0) / 255.0 * grad.sign()
            coef = float(params["adv_coef"][0])
            params["noise"] = ((x_in - x) + step).clamp(-eps, eps).mul(coef).to(x.dtype).detach()
        out = self.apply(x, y, num_classes, params)
        logits = model(out.x)
        mixed = soft_cross_entropy(logits, out.y)
        total = mixed if clean is None else mixed + clean
        return LossOutput(total, logits, mixed.detach())
