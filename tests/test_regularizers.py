"""Stochastic depth and DropBlock (models/regularizers.py) against hand computations, and in PyramidNet."""

from __future__ import annotations

import pytest
import torch

from msda_cli.errors import MsdaError
from msda_cli.models import build_model
from msda_cli.models.regularizers import (DropBlock, dropblock_gamma, dropblock_mask, linear_survival,
                                          stochastic_residual)

torch.set_num_threads(1)


def test_linear_decay_rule():
    # Huang et al.: p_l = 1 - l/L (1 - p_L); p_L = 0.5 over L = 4 blocks: 0.875, 0.75, 0.625, 0.5
    assert [linear_survival(l, 4, 0.5) for l in (1, 2, 3, 4)] == [0.875, 0.75, 0.625, 0.5]


def test_stochastic_residual_survives_at_its_rate_and_keeps_the_expectation():
    torch.manual_seed(0)
    shortcut, branch = torch.zeros(3), torch.ones(3)
    draws = torch.stack([stochastic_residual(shortcut, lambda: branch, 0.7, True) for _ in range(20_000)])
    kept = (draws[:, 0] > 0).float().mean().item()
    assert abs(kept - 0.7) < 4 * (0.7 * 0.3 / 20_000) ** 0.5  # within 4 standard errors
    assert torch.allclose(draws[draws[:, 0] > 0], torch.full((3,), 1 / 0.7))  # kept branch scaled by 1/p
    assert abs(draws.mean().item() - 1.0) < 0.02  # E = shortcut + branch
    assert torch.equal(stochastic_residual(shortcut, lambda: branch, 0.7, False), branch)  # eval: identity


def test_pyramidnet_blocks_survive_at_the_linear_rate_over_many_draws():
    model = build_model("pyramidnet110", num_classes=10, survival=0.5).train()
    blocks = [b for stage in model.stages() for b in stage]
    assert len(blocks) == 36 and blocks[-1].survival == 0.5 and blocks[0].survival == 1 - 0.5 / 36
    torch.manual_seed(1)
    block, x, draws = blocks[-1], torch.rand(1, blocks[-1].bn1.num_features, 8, 8), 2000
    with torch.no_grad():
        short = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, block.out_chans - x.shape[1]))
        survived = sum(not torch.equal(block(x), short) for _ in range(draws)) / draws
    assert abs(survived - 0.5) < 4 * (0.25 / draws) ** 0.5


def test_gamma_is_ghiasi_et_al_eq_1():
    # (1 - 0.9) / 3² · 8² / (8 - 3 + 1)² = 0.1 / 9 · 64 / 36
    assert dropblock_gamma(0.9, 3, 8, 8) == pytest.approx(0.1 / 9 * 64 / 36)


def test_dropblock_drops_its_expected_share_in_square_blocks():
    torch.manual_seed(0)
    mask = dropblock_mask((64, 16, 16, 16), keep_prob=0.9, block_size=3)
    # each unit is dropped when a centre falls in the (up to) 3x3 window of valid centres covering it
    gamma = dropblock_gamma(0.9, 3, 16, 16)
    coverage = torch.zeros(16, 16)
    for i in range(14):
        for j in range(14):
            coverage[i:i + 3, j:j + 3] += 1
    expected = (1 - (1 - gamma) ** coverage).mean().item()
    assert abs((1 - mask).mean().item() - expected) < 0.005
    assert 0.05 < expected < 0.1  # block overlaps and the border make it a little under 1 - keep_prob
    torch.manual_seed(3)
    one = dropblock_mask((1, 1, 12, 12), keep_prob=0.99, block_size=4)
    while (1 - one).sum() != 16:  # a single block on a fixed seed
        one = dropblock_mask((1, 1, 12, 12), keep_prob=0.99, block_size=4)
    rows, cols = torch.nonzero(one[0, 0] == 0, as_tuple=True)
    assert rows.max() - rows.min() == 3 and cols.max() - cols.min() == 3  # a 4 x 4 square


def test_dropblock_rescales_is_deterministic_and_is_identity_in_eval():
    layer, x = DropBlock(0.8, 3).train(), torch.ones(4, 2, 10, 10)
    torch.manual_seed(5)
    a = layer(x)
    torch.manual_seed(5)
    assert torch.equal(a, layer(x))
    kept = a[a > 0]
    assert torch.allclose(kept, torch.full_like(kept, a.numel() / kept.numel()))  # count / count_ones
    assert torch.equal(layer.eval()(x), x)


def test_pyramidnet_regularized_is_the_plain_net_in_eval_with_the_same_keys():
    torch.manual_seed(0)
    reg = build_model("pyramidnet110", num_classes=10, survival=0.5, dropblock_keep=0.9).eval()
    plain = build_model("pyramidnet110", num_classes=10).eval()
    assert set(reg.state_dict()) == set(plain.state_dict())
    plain.load_state_dict(reg.state_dict())
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(reg(x), plain(x))
    assert [b.drop is not None for s in reg.stages() for b in s] == [False] * 12 + [True] * 24  # stages 2 and 3


@pytest.mark.parametrize("kwargs", [{"survival": 0}, {"survival": 1.5}, {"dropblock_keep": 0},
                                    {"dropblock_size": 0}, {"dropblock_size": 2.5}])
def test_bad_regularizer_options(kwargs):
    with pytest.raises(MsdaError):
        build_model("pyramidnet110", num_classes=10, **kwargs)
