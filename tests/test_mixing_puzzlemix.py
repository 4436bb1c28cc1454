"""PuzzleMix: the graph-cut mask against brute force over every 2×2 block mask, the authors'
unary/pairwise split, the transport plan by hand, the saliency pass, the adversarial noise, and
labels equal to the realized mask share. (The shared contract tests are in test_mixing.py.)"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.mixing import build_mixer, soft_cross_entropy
from msda_cli.mixing.base import one_hot
from msda_cli.mixing.graphcut import energy
from msda_cli.mixing.puzzlemix import gradient_saliency, mask_energy_terms, move_blocks, transport_plan

torch.set_num_threads(1)
C = 5


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def hand_energy(mask, x, perm, sal, lam, beta, gamma, eta):
    """The PuzzleMix objective of one binary 2×2 block mask (1: own image) of sample 0, written out:
    Σ_p [m_p·u_partner + (1 − m_p)·u_own + prior(m_p)] + Σ_edges [β'·[m_p ≠ m_q] + γβ'·d(m_p, m_q)],
    with the data term d the channel mean of |block mean above/left − block mean below/right|."""
    n = 2
    beta_n = beta / n / 16
    pooled = [x[i].reshape(x.shape[1], n, x.shape[2] // n, n, x.shape[3] // n).mean((2, 4)) for i in (0, perm[0])]
    s = sal[[0, perm[0]]].reshape(2, n, sal.shape[1] // n, n, sal.shape[2] // n).mean((2, 4))
    s = s / s.sum((1, 2), keepdim=True)
    u_own, u_partner = s[0], s[1]
    prior = {1: -math.log(lam + 1e-8) * eta / n ** 2, 0: -math.log(1 - lam + 1e-8) * eta / n ** 2}
    src = {1: pooled[0], 0: pooled[1]}
    total = 0.0
    for r, c in itertools.product(range(n), range(n)):
        m = mask[r][c]
        total += m * float(u_partner[r, c]) + (1 - m) * float(u_own[r, c]) + prior[m]
    edges = [((0, c), (1, c)) for c in range(n)] + [((r, 0), (r, 1)) for r in range(n)]
    for (r1, c1), (r2, c2) in edges:
        a, b = mask[r1][c1], mask[r2][c2]
        d = float((src[a][:, r1, c1] - src[b][:, r2, c2]).abs().mean())
        total += beta_n * (a != b) + gamma * beta_n * d
    return total


@pytest.mark.parametrize("seed", range(12))
def test_the_mask_on_a_2x2_block_grid_is_the_brute_force_optimum(seed):
    g = gen(seed)
    x = torch.rand(2, 3, 8, 8, generator=g)
    sal = torch.rand(2, 8, 8, generator=g) ** 4  # peaked, so that the optimum is often a real mix
    beta, gamma, eta = 1.2, 2.0, 0.2
    mixer = build_mixer("puzzlemix", n_labels=2, transport=False, beta=beta, gamma=gamma, eta=eta)
    lam = 0.3 + 0.4 * float(torch.rand(1, generator=g))
    params = mixer.draw(tuple(x.shape), gen(0), lam=lam)
    params.update(block_num=2, index=torch.tensor([[0, 1], [1, 0]]), saliency=sal)
    out = mixer.apply(x, torch.tensor([0, 1]), C, params)
    got = out.mask[0, 0, ::4, ::4].long().tolist()
    masks = [[[m[0], m[1]], [m[2], m[3]]] for m in itertools.product((0, 1), repeat=4)]
    costs = [hand_energy(m, x, [1, 0], sal, lam, beta, gamma, eta) for m in masks]
    assert hand_energy(got, x, [1, 0], sal, lam, beta, gamma, eta) == pytest.approx(min(costs), abs=1e-6)
    # the graph's energy (the authors' split into unary halves and one pairwise part) is the written-out
    # objective up to a constant, for every mask
    unary, w_v, w_h, pairwise = mask_energy_terms(x, torch.tensor([1, 0]), sal, 2, lam, beta, gamma, eta, 4, 2)
    split = [energy(unary[0], pairwise, w_v[0], w_h[0], 1 - np.array(m)) for m in masks]
    assert np.ptp(np.array(split) - np.array(costs)) < 1e-6  # float32 saliency pooling
    # without transport the mix is M⊙x + (1 − M)⊙x[π] and the label its realized share
    M = out.mask
    assert torch.equal(out.x, M * x + (1 - M) * x[[1, 0]])
    assert torch.equal(out.lam, M.double().mean((1, 2, 3)).float())


def test_some_brute_force_optima_are_real_mixes():
    """The test above is not vacuous: its setting gives masks that are neither all own nor all partner."""
    mixed = 0
    for seed in range(12):
        g = gen(seed)
        x, sal = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g) ** 4
        mixer = build_mixer("puzzlemix", n_labels=2, transport=False, beta=1.2, gamma=2.0)
        lam = 0.3 + 0.4 * float(torch.rand(1, generator=g))
        params = mixer.draw(tuple(x.shape), gen(0), lam=lam)
        params.update(block_num=2, index=torch.tensor([[0, 1], [1, 0]]), saliency=sal)
        share = float(mixer.apply(x, torch.tensor([0, 1]), C, params).lam[0])
        mixed += 0 < share < 1
    assert mixed >= 6


def test_transport_moves_the_salient_blocks_under_the_mask_by_hand():
    """2×2 blocks, mask on the top row (z = 1, 1, 0, 0), saliency s = (0.1, 0.25, 0, 0.65), t_eps 0.1:
    cost[i, j] = 0.1·‖i − j‖² − s_i·z_j. Round 1: rows pick columns 0, 1, 2, 1; column 1 goes to row 3
    (−0.55 < −0.25), row 2's column-2 claim costs 0 and loses to the non-claiming rows' 0 (the authors'
    argmin over plan·cost); losers pay +1. Round 2: rows 0, 1, 2 pick column 0 (−0.1, −0.15, 0.1), row 1
    wins it. The two most salient blocks end up under the mask; blocks 2 and 3 get no source."""
    mask = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    sal = torch.tensor([[[0.1, 0.25], [0.0, 0.65]]])
    plan = transport_plan(mask, sal, eps=0.1)
    expected = torch.zeros(1, 4, 4)
    expected[0, 1, 0] = expected[0, 3, 1] = 1
    assert torch.equal(plan, expected)
    img = torch.arange(16.0).view(1, 1, 4, 4)
    moved = move_blocks(img, plan, 2, 2)
    assert torch.equal(moved[0, 0, :2, :2], img[0, 0, :2, 2:])  # block 1 now at block 0
    assert torch.equal(moved[0, 0, :2, 2:], img[0, 0, 2:, 2:])  # block 3 now at block 1
    assert torch.equal(moved[0, 0, 2:], torch.zeros(2, 4))


def test_transport_plans_are_partial_permutations():
    g = gen(1)
    mask = (torch.rand(6, 8, 8, generator=g) > 0.5).float()
    sal = torch.rand(6, 8, 8, generator=g)
    plan = transport_plan(mask, sal / sal.sum((1, 2), keepdim=True), eps=0.8)
    assert set(plan.unique().tolist()) <= {0.0, 1.0}
    assert (plan.sum(-1) <= 1).all() and (plan.sum(-2) <= 1).all()


@pytest.mark.parametrize("B", [1, 3, 6])
def test_label_is_the_realized_mask_share_with_transport(B):
    x, y = torch.rand(B, 3, 32, 32, generator=gen(2)), torch.randint(0, C, (B,), generator=gen(3))
    for seed in range(4):
        out = build_mixer("puzzlemix")(x, y, C, generator=gen(seed))
        share = out.mask.double().mean((1, 2, 3)).float()
        assert torch.equal(out.lam, share)
        assert set(out.mask.unique().tolist()) <= {0.0, 0.5, 1.0}  # n_labels 3
        Y = one_hot(y, C)
        assert torch.allclose(out.y, share[:, None] * Y + (1 - share[:, None]) * Y[out.index[1]], atol=1e-7)
        assert torch.equal(out.shares[:, 0], share)


def test_gradient_saliency_is_the_input_gradient_norm_by_hand():
    """For a linear model f = W·vec(x) + b, ∂CE/∂x_i = Wᵀ(softmax(f_i) − onehot(y_i)) / B."""
    B, shape = 4, (3, 4, 4)
    lin = nn.Linear(48, C)
    model = nn.Sequential(nn.Flatten(), lin)
    x, y = torch.rand(B, *shape, generator=gen(4)), torch.tensor([0, 1, 2, 3])
    sal, grad, clean = gradient_saliency(model, x, y, clean_lam=0.0)
    p = torch.softmax(model(x), 1)
    by_hand = ((p - one_hot(y, C)) @ lin.weight / B).view(B, *shape)
    assert torch.allclose(grad, by_hand, atol=1e-7)
    assert torch.allclose(sal, by_hand.square().mean(1).sqrt(), atol=1e-7)
    assert clean is None and all(q.grad is None for q in model.parameters())  # no parameter gradients
    _, _, clean = gradient_saliency(model, x, y, clean_lam=0.5)
    assert clean.item() == pytest.approx(2 * 0.5 * F.cross_entropy(model(x), y).item(), rel=1e-6)


def test_the_step_costs_a_second_forward_and_trains_the_clean_term():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, C))
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(m.training))
    x, y = torch.rand(6, 3, 16, 16, generator=gen(5)), torch.randint(0, C, (6,), generator=gen(6))
    res = build_mixer("puzzlemix").loss(model, x, y, C, generator=gen(7))
    assert calls == [False, True]  # the saliency pass in eval mode (clean_lam 0), then the mix
    assert torch.equal(res.loss.detach(), res.value)
    calls.clear()
    res = build_mixer("puzzlemix", clean_lam=0.5).loss(model, x, y, C, generator=gen(7))
    assert calls == [True, True]
    clean = F.cross_entropy(model(x), y)
    assert (res.loss - res.value).item() == pytest.approx(2 * 0.5 * clean.item(), rel=1e-5)
    mixed = build_mixer("puzzlemix", clean_lam=0.5)
    params = mixed.draw(tuple(x.shape), gen(7))
    params["saliency"] = gradient_saliency(model, x, y, 0.5)[0]
    out = mixed.apply(x, y, C, params)
    assert res.value.item() == pytest.approx(soft_cross_entropy(model(out.x), out.y).item(), rel=1e-5)


def test_adversarial_noise_stays_in_the_ball_and_the_image():
    eps = 10.0
    mixer = build_mixer("puzzlemix", adv_p=1.0, adv_eps=eps)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, C))
    x, y = torch.rand(4, 3, 16, 16, generator=gen(8)), torch.randint(0, C, (4,), generator=gen(9))
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    mixer.loss(model, x, y, C, generator=gen(10))
    params = mixer.draw(tuple(x.shape), gen(10))
    assert params["adv"].all() and (params["noise_start"].abs() <= eps / 255).all()
    clean_mix = mixer.apply(x, y, C, dict(params, saliency=gradient_saliency(model, x, y, 0.0)[0]))
    adv_mix = seen[-1]
    assert ((adv_mix >= 0) & (adv_mix <= 1)).all()
    # the saliency pass saw the noisy start, within the ball around x; the mix differs from the noise-free one
    assert not torch.equal(adv_mix, clean_mix.x)
    assert (seen[0] - x).abs().max() <= eps / 255 + 1e-6


def test_bad_hyperparameters_raise():
    for kw in ({"n_labels": 1}, {"t_size": 0}, {"adv_p": 1.5}, {"transport": "yes"}, {"neigh_size": 0},
               {"alpha": 0}, {"clean_lam": -1}):
        with pytest.raises(MsdaError):
            build_mixer("puzzlemix", **kw)


def test_images_without_a_fitting_block_grid_stay_unmixed():
    x, y = torch.rand(3, 3, 7, 9, generator=gen(11)), torch.tensor([0, 1, 2])
    out = build_mixer("puzzlemix")(x, y, C, generator=gen(0))
    assert torch.equal(out.x, x) and torch.equal(out.lam, torch.ones(3)) and torch.equal(out.y, one_hot(y, C))


def test_tabular_input_is_refused_and_channels_last_gives_the_same_mix():
    with pytest.raises(MsdaError, match="images"):
        build_mixer("puzzlemix")(torch.rand(4, 10), torch.arange(4), C)
    x, y = torch.rand(6, 3, 16, 16, generator=gen(12)), torch.arange(6) % C
    a = build_mixer("puzzlemix")(x, y, C, generator=gen(13))
    b = build_mixer("puzzlemix")(x.contiguous(memory_format=torch.channels_last), y, C, generator=gen(13))
    assert torch.allclose(a.x, b.x, atol=1e-6) and torch.equal(a.y, b.y)
