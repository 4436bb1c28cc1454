"""The α-β swap solver (msda_cli.mixing.graphcut) against exhaustive enumeration on tiny grids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from msda_cli.mixing.graphcut import energy, swap_grid


def labellings(h, w, n):
    for combo in itertools.product(range(n), repeat=h * w):
        yield np.array(combo).reshape(h, w)


@pytest.mark.parametrize("seed", range(20))
def test_two_labels_reach_the_exact_minimum(seed):
    rng = np.random.default_rng(seed)
    unary = rng.normal(size=(2, 3, 2))
    pairwise = 1.0 - np.eye(2)
    w_v, w_h = rng.uniform(0, 1.5, (1, 3)), rng.uniform(0, 1.5, (2, 2))
    lab = swap_grid(unary, pairwise, w_v, w_h)
    best = min(energy(unary, pairwise, w_v, w_h, c) for c in labellings(2, 3, 2))
    assert energy(unary, pairwise, w_v, w_h, lab) == pytest.approx(best, abs=1e-12)


def test_a_strong_smoothness_makes_one_segment_and_a_weak_one_follows_the_unaries():
    unary = np.zeros((2, 2, 2))
    unary[0, 0] = [0.0, 1.0]  # one node prefers label 0 by 1, the other three prefer label 1 by 0.4
    unary[0, 1] = unary[1, 0] = unary[1, 1] = [0.4, 0.0]
    pairwise = 1.0 - np.eye(2)
    ones_v, ones_h = np.ones((1, 2)), np.ones((2, 1))
    assert (swap_grid(unary, pairwise, 0.01 * ones_v, 0.01 * ones_h) == [[0, 1], [1, 1]]).all()
    # cutting the corner costs 2·w; keeping it with the rest costs 1: w = 0.6 joins it
    assert (swap_grid(unary, pairwise, 0.6 * ones_v, 0.6 * ones_h) == 1).all()


@pytest.mark.parametrize("seed", range(8))
def test_three_labels_end_at_a_swap_local_minimum(seed):
    """No single α-β swap move (every relabelling of the α and β nodes to {α, β}) lowers the energy."""
    rng = np.random.default_rng(seed)
    n = 3
    unary = rng.normal(size=(2, 3, n))
    pairwise = np.array([[(i - j) ** 2 / (n - 1) ** 2 for j in range(n)] for i in range(n)])  # PuzzleMix's
    w_v, w_h = rng.uniform(0, 1, (1, 3)), rng.uniform(0, 1, (2, 2))
    lab = swap_grid(unary, pairwise, w_v, w_h)
    e0 = energy(unary, pairwise, w_v, w_h, lab)
    for other in labellings(2, 3, n):
        for a, b in itertools.combinations(range(n), 2):
            moved = (lab == a) | (lab == b)
            if (other[~moved] == lab[~moved]).all() and np.isin(other[moved], (a, b)).all():
                assert energy(unary, pairwise, w_v, w_h, other) >= e0 - 1e-12
