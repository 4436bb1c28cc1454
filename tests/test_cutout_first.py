"""`data.cutout: SIDE`: DeVries & Taylor's Cutout on the inputs, then any method; checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from msda_cli.config import read_recipe, validate
from msda_cli.engine import build
from msda_cli.errors import MsdaError
from msda_cli.mixing import build_mixer
from msda_cli.mixing.cutout_first import CutoutFirst, cut_holes, draw_holes

torch.set_num_threads(1)


def _centres(B, H, W, seed):
    """The centres the holes take: randint(H) then randint(W) from the generator, as the module draws them."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, H, (B,), generator=g), torch.randint(0, W, (B,), generator=g)


def test_holes_by_hand_centre_side_and_border_clipping():
    B, H, W, side = 64, 10, 12, 4
    cy, cx = _centres(B, H, W, 5)
    bounds = draw_holes(B, H, W, side, torch.Generator().manual_seed(5))
    for b in range(B):  # DeVries & Taylor: [c - L//2, c + L//2) clipped to the image
        y, x = int(cy[b]), int(cx[b])
        assert bounds[b].tolist() == [max(y - 2, 0), min(y + 2, H), max(x - 2, 0), min(x + 2, W)]
    clipped = (bounds[:, 1] - bounds[:, 0] < side) | (bounds[:, 3] - bounds[:, 2] < side)
    assert bool(clipped.any()) and bool((~clipped).any())  # both kinds occur in these draws


def test_cut_holes_zeroes_exactly_the_hole_of_each_image_batch_of_one():
    x = torch.rand(1, 3, 8, 8) + 0.5  # no zero pixel of its own
    cy, cx = _centres(1, 8, 8, 2)
    out = cut_holes(x, 6, torch.Generator().manual_seed(2))
    y0, y1 = max(int(cy) - 3, 0), min(int(cy) + 3, 8)
    x0, x1 = max(int(cx) - 3, 0), min(int(cx) + 3, 8)
    hole = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    hole[..., y0:y1, x0:x1] = True
    assert torch.equal(out == 0, hole.expand_as(out))
    assert torch.equal(out[~hole.expand_as(out)], x[~hole.expand_as(x)])
    assert int(hole.sum()) == (y1 - y0) * (x1 - x0) <= 36


def test_a_hole_at_the_corner_is_clipped():
    g = torch.Generator()
    for seed in range(500):  # find a draw whose centre is the corner pixel (0, 0)
        cy, cx = _centres(1, 5, 5, seed)
        if int(cy) == 0 and int(cx) == 0:
            break
    else:
        pytest.fail("no draw at the corner")
    out = cut_holes(torch.ones(1, 1, 5, 5), 4, g.manual_seed(seed))
    assert (out == 0).sum() == 4 and bool((out[0, 0, :2, :2] == 0).all())  # a 4x4 hole keeps its 2x2 inside part


def test_cutout_composes_with_a_method_holes_first_then_the_methods_draws():
    x, y = torch.rand(6, 3, 16, 16) + 0.5, torch.arange(6) % 4
    mixer = CutoutFirst(build_mixer("mixup", alpha=1.0), 4)
    out = mixer(x, y, 4, generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    holed = cut_holes(x, 4, g)
    ref = build_mixer("mixup", alpha=1.0)(holed, y, 4, generator=g)
    assert torch.equal(out.x, ref.x) and torch.equal(out.y, ref.y)
    again = mixer(x, y, 4, generator=torch.Generator().manual_seed(9))
    assert torch.equal(out.x, again.x)  # deterministic under the generator
    assert mixer.hparams() == build_mixer("mixup", alpha=1.0).hparams() and mixer.name == "mixup"


def test_cutout_reaches_a_method_that_needs_the_model():
    """Manifold Mixup mixes hidden states: the model still sees the holed images (layer 0 = the input)."""
    seen = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    model.register_forward_pre_hook(lambda m, i: seen.append(i[0].detach().clone()))
    x, y = torch.rand(4, 3, 8, 8) + 0.5, torch.arange(4)
    mixer = CutoutFirst(build_mixer("vanilla"), 3)
    mixer.loss(model, x, y, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(seen[0], cut_holes(x, 3, torch.Generator().manual_seed(1)))


def test_data_cutout_builds_the_composed_method_and_only_then():
    raw = read_recipe("cifar100-manifold-mixup-pyramidnet200")
    cfg = validate(raw)
    assert cfg.data.cutout == 16
    mixer = build.build_method(cfg)
    assert isinstance(mixer, CutoutFirst) and mixer.side == 16 and mixer.method.alpha == 1.0
    raw["data"]["cutout"] = 0
    assert not isinstance(build.build_method(validate(raw)), CutoutFirst)
    raw["data"]["cutout"] = -1
    with pytest.raises(MsdaError, match="data.cutout"):
        validate(raw)


def test_cutout_needs_images():
    with pytest.raises(MsdaError, match="images"):
        cut_holes(torch.rand(4, 10), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_holes_on_the_device_equal_the_cpu_holes():
    x = torch.rand(5, 3, 32, 32)
    cpu = cut_holes(x, 16, torch.Generator().manual_seed(4))
    gpu = cut_holes(x.cuda(), 16, torch.Generator().manual_seed(4))
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
