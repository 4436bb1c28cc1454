"""Statistical checks: the generator-aware samplers against scipy, realized λ distributions,
and the regularization coefficients a_jk = E[(1 − M_j)(1 − M_k)] of the unified-analysis paper
from the sampler against their closed forms (METHODS.md).

All draws use fixed seeds, so each check is deterministic; tolerances are several standard
errors of the Monte-Carlo estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from msda_cli.analysis.coeffs import cutmix_coefficients
from msda_cli.mixing import build_mixer
from msda_cli.mixing import sampling as S

torch.set_num_threads(1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- samplers -------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 2.5, 9.0])
def test_gamma_matches_scipy(a):
    x = S.gamma(torch.full((20000,), a), gen(0)).numpy()
    assert stats.kstest(x, stats.gamma(a).cdf).pvalue > 1e-3
    assert x.mean() == pytest.approx(a, rel=0.05)
    assert x.var() == pytest.approx(a, rel=0.1)
    # few draws at a time (a batch-mode λ needs two) have the same law
    small = np.concatenate([S.gamma(torch.full((3,), a), gen(s)).numpy() for s in range(1500)])
    assert stats.kstest(small, stats.gamma(a).cdf).pvalue > 1e-3


@pytest.mark.parametrize("a,b", [(0.2, 0.2), (1.0, 1.0), (2.0, 5.0), (0.5, 3.0)])
def test_beta_matches_scipy(a, b):
    x = S.beta(a, b, 20000, gen(1)).numpy()
    assert stats.kstest(x, stats.beta(a, b).cdf).pvalue > 1e-3
    mean, var = stats.beta(a, b).stats("mv")
    assert x.mean() == pytest.approx(mean, abs=0.01)
    assert x.var() == pytest.approx(var, rel=0.06)


def test_beta_with_tiny_alpha_is_finite_and_u_shaped():
    x = S.beta(0.02, 0.02, 5000, gen(2))
    assert torch.isfinite(x).all() and ((x >= 0) & (x <= 1)).all()
    assert ((x < 0.01) | (x > 0.99)).float().mean() > 0.9
    assert x.mean().item() == pytest.approx(0.5, abs=0.03)


def test_dirichlet_moments():
    alpha = torch.tensor([0.2, 1.0, 3.0])
    x = S.dirichlet(alpha, 20000, gen(3))
    a0 = alpha.sum()
    mean = alpha / a0
    var = alpha * (a0 - alpha) / (a0 ** 2 * (a0 + 1))
    assert torch.allclose(x.sum(1), torch.ones(20000, dtype=torch.float64))
    assert torch.allclose(x.mean(0).float(), mean, atol=0.01)
    assert torch.allclose(x.var(0).float(), var, rtol=0.06)
    # marginals are Beta(α_k, α_0 − α_k)
    assert stats.kstest(x[:, 0].numpy(), stats.beta(0.2, a0 - 0.2).cdf).pvalue > 1e-3


@pytest.mark.parametrize("n", [20000, 3])
def test_flat_dirichlet_has_beta_marginals(n):
    """Dir(1, 1, 1) (Gamma(1) = Exp(1) draws): uniform on the simplex, marginals Beta(1, 2)."""
    x = torch.cat([S.dirichlet([1.0, 1.0, 1.0], n, gen(s)) for s in range(20000 // n)])
    assert torch.allclose(x.sum(1), torch.ones(len(x), dtype=torch.float64))
    for k in range(3):
        assert stats.kstest(x[:, k].numpy(), stats.beta(1.0, 2.0).cdf).pvalue > 1e-3
    assert torch.allclose(torch.corrcoef(x[:, :2].T)[0, 1].float(), torch.tensor(-0.5), atol=0.03)


def test_samplers_follow_the_generator():
    assert torch.equal(S.beta(0.4, 0.4, 7, gen(5)), S.beta(0.4, 0.4, 7, gen(5)))
    assert torch.equal(S.dirichlet([1.0, 2.0], 40, gen(5)), S.dirichlet([1.0, 2.0], 40, gen(5)))
    assert not torch.equal(S.beta(0.4, 0.4, 7, gen(5)), S.beta(0.4, 0.4, 7, gen(6)))
    torch.manual_seed(11)
    a = S.beta(1.0, 1.0, 5)  # generator=None: the global CPU RNG
    torch.manual_seed(11)
    assert torch.equal(a, S.beta(1.0, 1.0, 5))


# ---- realized λ ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,kw", [("mixup", {}), ("hmix", {"r": 0.75}), ("hmix", {"gamma": 0.5})])
def test_realized_lambda_is_beta_for_mixup_and_hmix(name, kw):
    """E[M] = λ draw by draw, so the realized label weights are exactly Beta(α, α) distributed."""
    alpha = 0.7
    mixer = build_mixer(name, alpha=alpha, mask_mode="sample", **kw)
    x = torch.zeros(3000, 1, 16, 16)
    out = mixer(x, torch.zeros(3000, dtype=torch.long), 10, generator=gen(0))
    lam = out.mask.double().mean((1, 2, 3)).numpy()
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    assert lam.mean() == pytest.approx(0.5, abs=0.02)


def test_cutmix_realized_lambda_is_biased_up_by_clipping():
    """Contrast for the test above: clipped boxes give CutMix labels above the drawn λ."""
    mixer = build_mixer("cutmix", alpha=1.0, mask_mode="sample")
    out = mixer(torch.zeros(3000, 1, 16, 16), torch.zeros(3000, dtype=torch.long), 10, generator=gen(0))
    assert out.lam.mean().item() > 0.55


# ---- regularization coefficients a_jk -------------------------------------------------------

def one_minus_masks(name, lam, n, H, W, seed=0, **kw):
    mixer = build_mixer(name, mask_mode="sample", **kw)
    out = mixer(torch.zeros(n, 1, H, W), torch.zeros(n, dtype=torch.long), 10, generator=gen(seed), lam=lam)
    return (1.0 - out.mask[:, 0].double()).flatten(1)  # [n, H*W]


def test_a_jk_mixup_is_one_minus_lambda_squared():
    lam = 0.3
    m = one_minus_masks("mixup", lam, 50, 6, 5)
    a = m.T @ m / m.shape[0]
    assert torch.allclose(a, torch.full_like(a, (1 - lam) ** 2), atol=1e-6)


def test_a_jk_cutmix_matches_exact_enumeration():
    lam, H, W, n = 0.6, 12, 10, 20000
    m = one_minus_masks("cutmix", lam, n, H, W)
    a = m.T @ m / n
    exact = cutmix_coefficients(lam, H, W)  # enumeration over every box centre
    se = torch.sqrt(exact * (1 - exact) / n) + 1e-3
    assert ((a - exact).abs() / se).max() < 5.0
    assert (a - exact).abs().mean() < 0.004
    # the fully-inside closed form (eq. 10 of the paper) is a different distribution near the border
    assert (exact[0, 0] - exact[(H // 2) * W + W // 2, (H // 2) * W + W // 2]).abs() > 0.1


def test_a_jk_gmix_matches_closed_form_away_from_border():
    """For λ ≥ 0.5, 1 − M = K and E[K_j K_k] = (s/2)·exp(−π‖j − k‖² / (2·s·H·W)) in the interior."""
    lam, H, W, n = 0.9, 32, 32, 20000
    s = min(lam, 1 - lam)
    m = one_minus_masks("gmix", lam, n, H, W, alpha=1.0).view(n, H, W)
    lo, hi = 12, 20  # interior pixels j (≥ 3 blob widths from the border)
    for dy, dx in [(0, 0), (0, 2), (3, 1), (4, 4)]:
        prod = m[:, lo:hi, lo:hi] * m[:, lo + dy:hi + dy, lo + dx:hi + dx]
        estimate = prod.mean().item()
        closed = s / 2 * math.exp(-math.pi * (dy * dy + dx * dx) / (2 * s * H * W))
        assert estimate == pytest.approx(closed, rel=0.05), (dy, dx)
    # over the whole image the border cuts the blob: the realized share falls short of s
    assert 0.7 * s < m.mean().item() < 0.95 * s
