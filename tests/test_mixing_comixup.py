"""Co-Mixup: the objective written out, each output's graph cut against exhaustive enumeration
(with and without the modular diversity term), the half-half labels, the set resolution, the
compatibility matrix, the saliency pass, and labels equal to each input's realized pixel share.
(The shared contract tests are in test_mixing.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.mixing import build_mixer
from msda_cli.mixing.base import one_hot
from msda_cli.mixing.comixup import co_labelling, compatibility, objective, output_labelling, resolve_sets

torch.set_num_threads(1)
C = 6


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def written_out(cost, onehot, beta, gamma):
    """Σ_o Σ_p Σ_i cost_i(p)·w_oi(p) + β/2·Σ (w(p) − w(q))² over edges + γ·Σ_{o≠o'} Σ_i c_oi·c_o'i."""
    n_out, g, _, n = onehot.shape
    total = sum(cost[i, r, c] * onehot[o, r, c, i] for o in range(n_out) for r in range(g) for c in range(g)
                for i in range(n))
    for o in range(n_out):
        for r, c in itertools.product(range(g), range(g)):
            if r + 1 < g:
                total += beta / 2 * ((onehot[o, r, c] - onehot[o, r + 1, c]) ** 2).sum()
            if c + 1 < g:
                total += beta / 2 * ((onehot[o, r, c] - onehot[o, r, c + 1]) ** 2).sum()
    counts = onehot.sum((1, 2))
    total += gamma * sum(counts[o] @ counts[p] for o in range(n_out) for p in range(n_out) if o != p)
    return total


def test_objective_is_the_written_out_formula():
    rng = np.random.default_rng(0)
    onehot = rng.dirichlet(np.ones(3), size=(4, 3, 3))  # fractional block weights, rows sum to 1
    cost = rng.normal(size=(3, 3, 3))
    assert objective(cost, onehot, 0.7, 0.3) == pytest.approx(written_out(cost, onehot, 0.7, 0.3), rel=1e-12)


def all_labellings(g, n):
    return [np.array(c).reshape(g, g) for c in itertools.product(range(n), repeat=g * g)]


def cut_energy(unary, lab, beta):
    """Σ_p unary[p, l_p] + β·(number of 4-neighbour pairs with different labels)."""
    g = lab.shape[0]
    cuts = (lab[1:] != lab[:-1]).sum() + (lab[:, 1:] != lab[:, :-1]).sum()
    return unary[np.arange(g)[:, None], np.arange(g)[None], lab].sum() + beta * cuts


@pytest.mark.parametrize("seed", range(6))
def test_without_diversity_every_output_is_the_exhaustive_optimum(seed):
    """γ = η = 0, one round: the outputs are independent, each the best of all n^(g·g) labellings;
    the joint objective is then the minimum over all n_out·g·g-block labellings of the batch."""
    rng = np.random.default_rng(seed)
    n, g, beta = 2, 2, 0.3
    cost = -rng.dirichlet(np.ones(g * g), size=n).reshape(n, g, g)
    init = rng.integers(0, n, (n, g, g))
    onehot = co_labelling(cost, np.eye(n), init, np.full(n, 0.5), beta, 0.0, 0.0, 0.83, "hard", 1, False)
    unary = cost.transpose(1, 2, 0)
    best = min(cut_energy(unary, lab, beta / g ** 2) for lab in all_labellings(g, n))
    for o in range(n):
        assert cut_energy(unary, onehot[o].argmax(-1), beta / g ** 2) == pytest.approx(best, abs=1e-12)
    joint = min(objective(cost, np.eye(n)[np.stack([a, b])], beta / g ** 2, 0.0)
                for a in all_labellings(g, n) for b in all_labellings(g, n))
    assert objective(cost, onehot, beta / g ** 2, 0.0) == pytest.approx(joint, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_each_output_minimizes_its_modular_diversity_energy_given_the_others(seed):
    """One round with γ > 0: output o is the exhaustive argmin of Σ_p [cost + 2γ'·[A·c_rest > τ']·A·c_rest]
    + β'·cuts, c_rest the other outputs' current input counts (the authors' modular approximation)."""
    rng = np.random.default_rng(seed)
    n, g = 3, 2
    beta, gamma, thres, omega = 0.32, 1.0, 0.3, 0.2
    cost = -rng.dirichlet(np.ones(g * g), size=n).reshape(n, g, g)
    dist = rng.uniform(0, 4, (n, n))
    dist = (dist + dist.T) * (1 - np.eye(n))
    A = (1 - omega) * np.eye(n) + omega * dist / dist.sum() * n
    init = rng.integers(0, n, (n, g, g))
    onehot = co_labelling(cost, A, init, np.full(n, 1 / 3), beta, gamma, 0.0, thres, "hard", 1, False)
    b, gm, t = beta / g ** 2, gamma / g ** 2, thres * g ** 2
    current = np.eye(n)[init]
    for o in range(n):
        rest = A @ (current.sum((0, 1, 2)) - current[o].sum((0, 1)))
        unary = cost.transpose(1, 2, 0) + 2 * gm * (rest > t) * rest
        best = min(cut_energy(unary, lab, b) for lab in all_labellings(g, n))
        assert cut_energy(unary, onehot[o].argmax(-1), b) == pytest.approx(best, abs=1e-12)
        current[o] = onehot[o]


def test_two_used_inputs_of_equal_cost_take_the_half_half_label():
    cost = np.full((2, 2, 2), -0.25)
    weights = output_labelling(cost, counts=np.array([2.0, 2.0]), beta=0.01, extend=True)
    assert np.array_equal(weights, np.full((2, 2, 2), 0.5))  # mean cost − 5e-4 beats either input
    plain = output_labelling(cost, counts=np.array([2.0, 2.0]), beta=0.01, extend=False)
    assert set(np.unique(plain)) <= {0.0, 1.0} and np.array_equal(plain.sum(-1), np.ones((2, 2)))


def test_three_used_inputs_offer_the_pairs_of_the_three_most_used():
    cost = np.zeros((2, 2, 4))
    cost[..., 0] = cost[..., 2] = -0.3  # inputs 0 and 2 best and equal: their half-half label wins
    weights = output_labelling(cost, counts=np.array([1.0, 1.0, 2.0, 0.0]), beta=0.01, extend=True)
    assert np.allclose(weights, np.broadcast_to([0.5, 0.0, 0.5, 0.0], (2, 2, 4)))


def test_identical_input_sets_are_resolved_as_the_authors_do():
    used = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=bool)
    extra = resolve_sets(used)
    expected = np.zeros((4, 3))
    expected[0, 0] = expected[1, 1] = 1.0  # the single-input pair (2, 3) is left alone
    assert np.array_equal(extra, expected)


def test_compatibility_is_the_l1_distance_of_the_salient_windows():
    sal = torch.zeros(3, 16, 16)
    sal[0, 0:8, 0:8] = 1  # window at (0, 0)
    sal[1, 8:16, 4:12] = 1  # window at (8, 4)
    sal[2, 2:10, 8:16] = 1  # window at (2, 8)
    d = compatibility(sal)
    assert torch.equal(d, torch.tensor([[0.0, 12, 10], [12, 0, 10], [10, 10, 0]]))


@pytest.mark.parametrize("B,part", [(7, 3), (1, 20), (4, 20)])
def test_labels_are_each_inputs_realized_pixel_share(B, part):
    """12 × 10 images on a 4 × 4 grid: uneven blocks, so pixel shares differ from block counts."""
    x, y = torch.rand(B, 3, 12, 10, generator=gen(1)), torch.randint(0, C, (B,), generator=gen(2))
    mixer = build_mixer("comixup", part=part)
    params = mixer.draw(tuple(x.shape), gen(3))
    blocks, index = mixer.block_weights(x, params)
    out = mixer.apply(x, y, C, params)
    weights = F.interpolate(blocks, size=(12, 10), mode="nearest")
    assert torch.allclose(weights.sum(1), torch.ones(B, 12, 10))
    assert torch.equal(out.index, index) and torch.equal(index[0], torch.arange(B))
    expected = sum(weights[:, k:k + 1] * x[index[k]] for k in range(index.shape[0]))
    assert torch.allclose(out.x, expected, atol=1e-6)
    share = weights.flatten(2).double().mean(-1).float()
    assert torch.equal(out.shares, share) and torch.equal(out.lam, share[:, 0])
    Y = one_hot(y, C)
    assert torch.allclose(out.y, sum(share[:, k:k + 1] * Y[index[k]] for k in range(index.shape[0])), atol=1e-6)
    for b in range(B):  # every source lies in the output's own partition
        start = b // part * part
        assert ((index[:, b] >= start) & (index[:, b] < min(start + part, B))).all()


def test_peaked_saliency_makes_outputs_that_mix_several_inputs():
    B, H = 20, 32
    g = gen(4)
    centre = torch.rand(B, 2, generator=g) * H
    r = torch.arange(H, dtype=torch.float32)
    sal = torch.exp(-((r.view(1, H, 1) - centre[:, 0].view(-1, 1, 1)) ** 2
                      + (r.view(1, 1, H) - centre[:, 1].view(-1, 1, 1)) ** 2) / 50)
    mixer = build_mixer("comixup")
    params = dict(mixer.draw((B, 3, H, H), gen(5)), saliency=sal)
    out = mixer.apply(torch.rand(B, 3, H, H, generator=g), torch.arange(B) % C, C, params)
    used = (out.shares > 0).sum(1).float()
    assert used.mean() > 1.5  # the authors report about 2-3 inputs per output
    assert torch.allclose(out.y.sum(1), torch.ones(B))


def test_the_step_has_a_saliency_pass_and_a_clean_term():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, C))
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(m.training))
    x, y = torch.rand(5, 3, 16, 16, generator=gen(6)), torch.randint(0, C, (5,), generator=gen(7))
    res = build_mixer("comixup").loss(model, x, y, C, generator=gen(8))
    assert calls == [True, True]  # clean_lam 1: the saliency pass trains in train mode
    clean = F.cross_entropy(model(x), y)
    assert (res.loss - res.value).item() == pytest.approx(2 * 1.0 * clean.item(), rel=1e-5)
    calls.clear()
    res = build_mixer("comixup", clean_lam=0.0).loss(model, x, y, C, generator=gen(8))
    assert calls == [False, True] and torch.equal(res.loss.detach(), res.value)


def test_bad_hyperparameters_raise():
    for kw in ({"block_num": 1}, {"block_num": 0}, {"part": 0}, {"niter": 0}, {"thres_type": "x"},
               {"omega": 2}, {"set_resolve": 1}, {"alpha": 0}):
        with pytest.raises(MsdaError):
            build_mixer("comixup", **kw)


def test_tabular_input_is_refused_and_channels_last_gives_the_same_mix():
    with pytest.raises(MsdaError, match="images"):
        build_mixer("comixup")(torch.rand(4, 10), torch.arange(4), C)
    x, y = torch.rand(6, 3, 16, 16, generator=gen(12)), torch.arange(6) % C
    a = build_mixer("comixup")(x, y, C, generator=gen(13))
    b = build_mixer("comixup")(x.contiguous(memory_format=torch.channels_last), y, C, generator=gen(13))
    assert torch.allclose(a.x, b.x, atol=1e-6) and torch.equal(a.y, b.y)
