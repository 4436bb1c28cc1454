"""The method library: contract invariants for every method, exact label = realized pixel share,
HMix/GMix/DCutMix geometry, MixupE by hand, Manifold Mixup by hand, agreement with timm,
and hyperparameter validation.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.mixing import MIXERS, build_mixer, method_hparams, soft_cross_entropy
from msda_cli.mixing.base import one_hot
from msda_cli.mixing.mixupe import expected_one_minus_lam, q_hat

torch.set_num_threads(1)

C = 7
ALL = sorted(MIXERS)
EXPECTED = {
    "vanilla", "mixup", "cutmix", "mixup-cutmix", "hmix", "gmix", "mixupe", "dmixup", "dcutmix",
    "saliency-dcutmix", "cutout", "manifold-mixup", "resizemix", "fmix", "saliencymix", "puzzlemix", "comixup",
}  # fmt: skip
TWO_IMAGE_MASK = ["mixup", "cutmix", "mixup-cutmix", "hmix", "gmix", "fmix", "saliencymix", "mixupe",
                  "manifold-mixup"]
K_CUT = ["dcutmix", "saliency-dcutmix"]
IMAGE_ONLY = ["cutmix", "mixup-cutmix", "hmix", "gmix", "fmix", "saliencymix", "resizemix", "cutout",
              "dcutmix", "saliency-dcutmix"]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(B=5, H=16, W=16, seed=0, ch=3):
    g = gen(seed + 100)
    return torch.rand(B, ch, H, W, generator=g), torch.randint(0, C, (B,), generator=g)


def modes(name):
    return ["batch", "sample"] if "mask_mode" in method_hparams(name) else [None]


def build(name, mode=None, **kw):
    if mode is not None:
        kw["mask_mode"] = mode
    return build_mixer(name, **kw)


CASES = [(n, m) for n in ALL for m in modes(n)]


def test_every_method_is_registered():
    assert EXPECTED <= set(MIXERS)


def test_unknown_method_lists_valid_names():
    with pytest.raises(MsdaError) as e:
        build_mixer("mixupp")
    assert "mixup" in str(e.value) and "gmix" in str(e.value) and "dcutmix" in str(e.value)


@pytest.mark.parametrize("name,mode", CASES)
@pytest.mark.parametrize("B", [1, 5])
def test_contract_invariants(name, mode, B):
    x, y = batch(B, 12, 10)
    mixer = build(name, mode, smoothing=0.1)
    out = mixer(x, y, num_classes=C, generator=gen(3))
    assert out.x.shape == x.shape and out.x.dtype == x.dtype and out.x.device == x.device
    assert out.y.shape == (B, C) and out.y.dtype == torch.float32
    assert torch.allclose(out.y.sum(1), torch.ones(B), atol=1e-6)
    assert (out.y >= 0).all()
    assert out.lam.shape == (B,) and ((out.lam >= 0) & (out.lam <= 1)).all()
    assert torch.isfinite(out.x).all()
    if out.mask is not None:
        assert out.mask.shape == (B, 1, 12, 10)
    # same generator seed -> identical output; another seed -> (almost surely) different
    again = mixer(x, y, num_classes=C, generator=gen(3))
    assert torch.equal(out.x, again.x) and torch.equal(out.y, again.y)
    import json

    json.dumps(mixer.hparams())


@pytest.mark.parametrize("name,mode", [(n, m) for n, m in CASES if n not in ("vanilla", "cutout")])
def test_draws_depend_on_the_seed(name, mode):
    x, y = batch(8, 16, 16)
    mixer = build(name, mode)
    outs = [mixer(x, y, C, generator=gen(s)) for s in range(4)]
    assert any(not torch.equal(outs[0].x, o.x) for o in outs[1:])


@pytest.mark.parametrize("name,mode", [(n, m) for n in TWO_IMAGE_MASK for m in modes(n)])
def test_two_image_label_is_the_realized_pixel_share(name, mode):
    """x̃ = M⊙x + (1−M)⊙x[π] and ỹ = mean(M)·y + (1 − mean(M))·y[π], exactly."""
    x, y = batch(9, 16, 12)
    out = build(name, mode)(x, y, C, generator=gen(5))
    perm = out.index[1]
    M = out.mask
    assert torch.allclose(out.x, M * x + (1 - M) * x[perm], atol=1e-6)
    realized = M.double().mean((1, 2, 3)).float()
    assert torch.equal(out.lam, realized)
    Y = one_hot(y, C)
    assert torch.allclose(out.y, realized[:, None] * Y + (1 - realized[:, None]) * Y[perm], atol=1e-7)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_resizemix_pastes_a_shrunk_partner_and_labels_its_area(mode):
    x, y = batch(6, 32, 32)
    out = build("resizemix", mode)(x, y, C, generator=gen(2), lam=0.75)  # τ = 0.5: a 16×16 patch
    M = out.mask
    assert torch.equal(out.lam, M.double().mean((1, 2, 3)).float())
    assert torch.allclose(out.lam, torch.full((6,), 0.75))
    assert torch.equal(out.x * M, x * M)  # outside the patch: x untouched
    perm = out.index[1]
    b = 0
    rows, cols = torch.nonzero(M[b, 0] == 0, as_tuple=True)
    y0, x0 = int(rows.min()), int(cols.min())
    patch = out.x[b, :, y0:y0 + 16, x0:x0 + 16]
    expected = torch.nn.functional.interpolate(x[perm[b]][None], size=(16, 16), mode="bilinear",
                                               align_corners=False)[0]
    assert torch.allclose(patch, expected, atol=1e-5)


def test_fmix_keeps_lambda_pixels_rounded_up_or_down_at_random():
    x, y = batch(40, 7, 9)  # 63 pixels: λ·63 is never an integer for λ = 0.3
    out = build("fmix", "sample")(x, y, C, generator=gen(3), lam=0.3)
    kept = out.mask.flatten(1).sum(1)
    assert set(kept.tolist()) == {18.0, 19.0}  # ⌊18.9⌋ and ⌈18.9⌉, both drawn
    assert torch.equal(out.lam, (kept / 63).float())
    whole = build("fmix", "sample")(batch(40, 10, 10)[0], y, C, generator=gen(3), lam=0.07)
    assert set(whole.mask.flatten(1).sum(1).tolist()) == {7.0}  # 0.07·100 = 7.000000000000001 in floats


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_fmix_mask_holds_the_top_count_pixels_exactly_even_with_ties(device):
    """Top `count` pixels, ties at the threshold filled in raster order, for count 0 … H·W (the CPU sorts
    in NumPy, other devices in torch)."""
    from msda_cli.mixing.fmix import top_fraction_mask

    g = gen(8)
    images = torch.cat([torch.randint(0, 4, (5, 5, 6), generator=g).float(),  # many ties
                        torch.randn(4, 5, 6, generator=g)])
    count = torch.tensor([0, 1, 7, 30, 13, 0, 1, 29, 15])
    for rows in (slice(None), slice(5, None)):  # with ties, and without
        got = top_fraction_mask(images[rows].to(device), count[rows].to(device)).cpu()
        assert got.shape == (len(count[rows]), 1, 5, 6) and got.dtype == torch.bool
        for img, c, m in zip(images[rows], count[rows].tolist(), got):
            values = img.flatten().tolist()
            chosen = sorted(range(30), key=lambda i: (-values[i], i))[:c]
            expected = torch.zeros(30, dtype=torch.bool)
            expected[chosen] = True
            assert torch.equal(m.flatten(), expected)


def test_mask_mode_defaults_follow_the_authors_code():
    """Cutout and the K-image cut methods cut per sample in their authors' code; the rest per batch."""
    per_sample = {"cutout", "dcutmix", "saliency-dcutmix"}
    for name in MIXERS:
        if "mask_mode" in method_hparams(name):
            assert build_mixer(name).mask_mode == ("sample" if name in per_sample else "batch"), name
    phi = build_mixer("dcutmix").draw((6, 3, 8, 8), generator=gen(0))["phi"]
    assert phi.shape == (6, 3) and len({tuple(r) for r in phi.tolist()}) == 6  # φ per sample


@pytest.mark.parametrize("W", [32, 160])
def test_paste_boxes_equals_pasting_one_box_after_another(W):
    """Both ways of pasting (clone + slice, gather + lerp for a large first box) give the same batch."""
    from msda_cli.mixing.masks import paste_boxes

    H = 24
    x = torch.rand(5, 3, H, W, generator=gen(6))
    perms = [torch.randperm(5, generator=gen(k)) for k in range(3)]
    boxes = {"small first": [(2, 6, 3, 9), (0, 24, 0, W), (5, 9, 1, 4)],
             "large first": [(0, 22, 1, W - 1), (4, 12, 5, 19), (0, 0, 3, 5)],
             "empty first": [(3, 3, 0, W), (1, 20, 2, W - 3)]}
    for name, chain in boxes.items():
        expected = x.clone()
        for perm, (y0, y1, x0, x1) in zip(perms, chain):
            expected[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        got = paste_boxes(x, list(zip(perms, chain)))
        assert torch.equal(got, expected), name
    assert torch.equal(paste_boxes(x, []), x) and paste_boxes(x, []) is not x


@pytest.mark.parametrize("h, w", [(13, 7), (1, 1), (20, 29), (31, 30), (32, 30)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_resizemix_shrink_equals_bilinear_interpolation(h, w, layout):
    from msda_cli.mixing.cutmix import shrink_bilinear

    x = torch.rand(3, 2, 32, 30, generator=gen(5))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    got = shrink_bilinear(x, h, w)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    if (h, w) == (32, 30):  # no resize: the images themselves
        assert torch.equal(got, x)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cutout_zeroes_a_box_and_keeps_the_label(mode):
    x, y = batch(5, 16, 16)
    out = build("cutout", mode, size=0.5)(x, y, C, generator=gen(1))
    assert torch.equal(out.x, x * out.mask)
    assert (out.mask == 0).any() and torch.equal(out.lam, torch.ones(5))
    assert torch.equal(out.y, one_hot(y, C))


@pytest.mark.parametrize("name,mode", [(n, m) for n in K_CUT for m in ("batch", "sample")])
def test_k_image_cut_labels_are_realized_fractions(name, mode):
    x, y = batch(7, 20, 16)
    out = build(name, mode, k=4, alpha=0.7)(x, y, C, generator=gen(4))
    src = out.sources.long()  # [B,1,H,W]: which row of `index` each pixel comes from
    frac = torch.stack([(src == k).double().mean((1, 2, 3)) for k in range(4)], 1).float()
    assert torch.allclose(out.shares, frac, atol=1e-7)
    assert torch.allclose(out.lam, frac[:, 0])
    B, _, H, W = x.shape
    expected = torch.empty_like(x)
    for b in range(B):  # reference by explicit indexing (test only)
        img = out.index[src[b, 0], b]  # [H, W] source image of every pixel
        expected[b] = x[img, :, torch.arange(H)[:, None], torch.arange(W)[None, :]].permute(2, 0, 1)
    assert torch.equal(out.x, expected)
    Y = one_hot(y, C)
    ref = sum(out.shares[:, k:k + 1] * Y[out.index[k]] for k in range(4))
    assert torch.allclose(out.y, ref, atol=1e-6)


def test_dmixup_is_the_dirichlet_weighted_sum():
    x, y = batch(6, 8, 8)
    out = build("dmixup", k=4, alpha=0.5)(x, y, C, generator=gen(0))
    phi, idx = out.shares, out.index
    assert torch.allclose(phi.sum(1), torch.ones(6), atol=1e-6)
    ref = sum(phi[:, k].view(-1, 1, 1, 1) * x[idx[k]] for k in range(4))
    assert torch.allclose(out.x, ref, atol=1e-6)
    assert torch.equal(idx[0], torch.arange(6))


def test_lam_fixes_the_draw():
    x, y = batch(4, 16, 16)
    assert torch.allclose(build("mixup")(x, y, C, generator=gen(0), lam=0.65).lam, torch.full((4,), 0.65))
    assert torch.allclose(build("hmix")(x, y, C, generator=gen(0), lam=0.65).lam, torch.full((4,), 0.65), atol=1e-6)
    out = build("dmixup", k=3, alpha=2 / 9)(x, y, C, generator=gen(0), lam=1 / 3)
    assert torch.allclose(out.shares[:, 0], torch.full((4,), 1 / 3))
    with pytest.raises(MsdaError):
        build("mixup")(x, y, C, lam=1.5)


# ---- tabular input ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vanilla", "mixup", "dmixup", "manifold-mixup", "mixupe"])
def test_tabular_methods_mix_rows(name):
    g = gen(0)
    x, y = torch.rand(5, 11, generator=g), torch.randint(0, C, (5,), generator=g)
    out = build_mixer(name)(x, y, C, generator=gen(1))
    assert out.x.shape == (5, 11) and torch.allclose(out.y.sum(1), torch.ones(5))
    model = nn.Sequential(nn.Linear(11, 9), nn.ReLU(), nn.Linear(9, C))
    res = build_mixer(name).loss(model, x, y, C, generator=gen(2))
    assert res.loss.dim() == 0 and torch.isfinite(res.loss)


@pytest.mark.parametrize("name", IMAGE_ONLY)
def test_mask_methods_reject_tabular_input(name):
    x, y = torch.rand(4, 10), torch.randint(0, C, (4,))
    with pytest.raises(MsdaError, match="images"):
        build_mixer(name)(x, y, C)


# ---- validation ------------------------------------------------------------------------

BAD = [
    ("mixup", {"alpha": 0}), ("mixup", {"alpha": -1}), ("cutmix", {"alpha": "x"}),
    ("hmix", {"r": 1.5}), ("hmix", {"r": -0.1}), ("hmix", {"gamma": 0}), ("gmix", {"alpha": 0}),
    ("dcutmix", {"k": 1}), ("dcutmix", {"k": 2.5}), ("dcutmix", {"prob": 1.2}), ("dmixup", {"k": True}),
    ("saliency-dcutmix", {"prob": -0.5}), ("mixup-cutmix", {"q": 2}), ("manifold-mixup", {"layers": -1}),
    ("manifold-mixup", {"layers": 1.5}), ("mixup-cutmix", {"cutmix_alpha": 0}),
    ("mixupe", {"variant": "v3"}), ("mixupe", {"eta": -1}), ("cutmix", {"mask_mode": "pixel"}),
    ("vanilla", {"smoothing": 1.0}), ("mixup", {"smoothing": -0.1}), ("cutout", {"size": 2}),
    ("resizemix", {"scale_min": 0.9, "scale_max": 0.5}), ("mixup", {"beta": 1.0}), ("vanilla", {"alpha": 1}),
]  # fmt: skip


@pytest.mark.parametrize("name,kw", BAD)
def test_bad_hyperparameters_raise(name, kw):
    with pytest.raises(MsdaError):
        build_mixer(name, **kw)


def test_unknown_hyperparameter_lists_valid_ones():
    with pytest.raises(MsdaError) as e:
        build_mixer("hmix", ratio=0.5)
    assert "ratio" in str(e.value) and "alpha" in str(e.value) and "gamma" in str(e.value)


# ---- HMix ------------------------------------------------------------------------------

def test_hmix_mask_mean_is_lambda_exactly():
    x, y = batch(64, 32, 32)
    for seed in range(3):
        mixer = build("hmix", "sample", alpha=1.0, r=0.75)
        params = mixer.draw(tuple(x.shape), gen(seed))
        out = mixer.apply(x, y, C, params)
        assert torch.allclose(out.mask.double().mean((1, 2, 3)), params["lam"], atol=1e-6, rtol=0)
        assert torch.allclose(out.lam.double(), params["lam"], atol=1e-6, rtol=0)
        inside = out.mask == 0
        assert inside.any()  # a real box was cut


def test_hmix_r0_is_mixup_and_r1_unclipped_is_cutmix():
    x, y = batch(6, 32, 32)
    for seed in range(3):
        a = build("hmix", r=0.0)(x, y, C, generator=gen(seed))
        b = build("mixup")(x, y, C, generator=gen(seed))
        assert torch.equal(a.x, b.x) and torch.allclose(a.y, b.y, atol=1e-7)
    # r = 1, λ = 0.75: a 16×16 box; where it is not clipped HMix equals CutMix, where clipped it differs
    x, y = batch(64, 32, 32)
    h = build("hmix", "sample", r=1.0)(x, y, C, generator=gen(9), lam=0.75)
    c = build("cutmix", "sample")(x, y, C, generator=gen(9), lam=0.75)
    unclipped = (c.mask == 0).flatten(1).sum(1) == 256
    assert 0 < int(unclipped.sum()) < 64
    assert torch.equal(h.x[unclipped], c.x[unclipped]) and torch.equal(h.y[unclipped], c.y[unclipped])
    assert not torch.allclose(h.x[~unclipped], c.x[~unclipped])
    assert torch.allclose(h.lam, torch.full((64,), 0.75), atol=1e-6)  # HMix keeps λ, CutMix does not
    assert (c.lam[~unclipped] > 0.75).all()


def test_hmix_gamma_draws_r_per_mask():
    mixer = build("hmix", "sample", gamma=0.5)
    params = mixer.draw((200, 3, 16, 16), gen(0))
    r = params["r"]
    assert r.std() > 0.2 and ((r >= 0) & (r <= 1)).all()


# ---- GMix ------------------------------------------------------------------------------

def gmix_reference(lam, cy, cx, H, W):
    s = min(lam, 1 - lam)
    rows = torch.arange(H, dtype=torch.float64)[:, None]
    cols = torch.arange(W, dtype=torch.float64)[None, :]
    K = torch.exp(-math.pi * ((rows - cy) ** 2 + (cols - cx) ** 2) / (s * H * W))
    return K if lam < 0.5 else 1 - K


@pytest.mark.parametrize("lam", [0.3, 0.8])
def test_gmix_blob_formula_and_minority(lam):
    H, W = 24, 20
    x, y = batch(3, H, W)
    mixer = build("gmix")
    params = mixer.draw(tuple(x.shape), gen(0), lam=lam)
    params["centres"] = torch.tensor([[11, 7]])
    out = mixer.apply(x, y, C, params)
    ref = gmix_reference(lam, 11, 7, H, W).float()
    assert torch.allclose(out.mask[0, 0], ref, atol=1e-6)
    # the blob carries the minority image: at its centre the minority image has all the weight
    centre = out.mask[0, 0, 11, 7].item()
    assert centre == pytest.approx(1.0 if lam < 0.5 else 0.0, abs=1e-6)


def test_gmix_realized_label_near_and_far_from_border():
    H = W = 128
    x, y = batch(2, H, W, ch=1)
    mixer = build("gmix")
    for lam in (0.05, 0.95):
        params = mixer.draw(tuple(x.shape), gen(0), lam=lam)
        params["centres"] = torch.tensor([[64, 64]])
        far = mixer.apply(x, y, C, params).lam[0].item()
        assert far == pytest.approx(lam, abs=2e-4)
        params["centres"] = torch.tensor([[0, 3]])
        near = mixer.apply(x, y, C, params).lam[0].item()
        minority_share = near if lam < 0.5 else 1 - near
        assert minority_share < 0.5 * 0.05  # about a quarter of the blob survives in a corner
    # at 32 px a target of 0.5 realizes about 0.29 on average (METHODS.md)
    mixer = build("gmix", "sample")
    out = mixer(torch.rand(2000, 1, 32, 32), torch.zeros(2000, dtype=torch.long), C, generator=gen(1), lam=0.5)
    assert 0.26 < 1 - out.lam.mean().item() < 0.32  # λ = 0.5 is not < 0.5: the blob carries the partner


# ---- DCutMix ---------------------------------------------------------------------------

def test_dcutmix_boxes_nested_and_rings_are_labels():
    K, H, W = 4, 32, 24
    mixer = build("dcutmix", "sample", k=K, alpha=0.8)
    x, y = batch(300, H, W, ch=1)
    params = mixer.draw(tuple(x.shape), gen(0))
    bounds = params["bounds"]  # [B, K-1, 4]
    for k in range(1, K - 1):  # box k inside box k-1
        outer, inner = bounds[:, k - 1], bounds[:, k]
        assert (inner[:, 0] >= outer[:, 0]).all() and (inner[:, 1] <= outer[:, 1]).all()
        assert (inner[:, 2] >= outer[:, 2]).all() and (inner[:, 3] <= outer[:, 3]).all()
    area = ((bounds[..., 1] - bounds[..., 0]) * (bounds[..., 3] - bounds[..., 2])).double()
    full = torch.full((300, 1), float(H * W), dtype=torch.float64)
    areas = torch.cat([full, area, torch.zeros(300, 1, dtype=torch.float64)], 1)
    rings = (areas[:, :-1] - areas[:, 1:]) / (H * W)
    out = mixer.apply(x, y, C, params)
    assert torch.allclose(out.shares.double(), rings, atol=1e-6)
    # rounding the sides keeps the realized shares close to φ
    assert (out.shares.double() - params["phi"]).abs().max() < 0.1


def test_dcutmix_mean_shares_are_one_over_k():
    mixer = build("dcutmix", "sample", k=3, alpha=1.0)
    out = mixer(torch.zeros(4000, 1, 32, 32), torch.zeros(4000, dtype=torch.long), C, generator=gen(0))
    assert torch.allclose(out.shares.mean(0), torch.full((3,), 1 / 3), atol=0.015)


def test_dcutmix_prob_zero_is_vanilla_and_batch_mode_shares_one_mask():
    x, y = batch(5, 16, 16)
    out = build("dcutmix", prob=0.0)(x, y, C, generator=gen(0))
    assert torch.equal(out.x, x) and torch.equal(out.y, one_hot(y, C))
    out = build("dcutmix", "batch", k=3)(x, y, C, generator=gen(0))
    assert (out.sources == out.sources[:1]).all() and torch.equal(out.shares, out.shares[:1].expand(5, -1))


# ---- saliency ----------------------------------------------------------------------------

def blob_images(spots, H, W, seed=0):
    """A faint textured background with one bright Gaussian blob per image (at `spots`)."""
    g = gen(seed)
    rows = torch.arange(H, dtype=torch.float32).view(H, 1)
    cols = torch.arange(W, dtype=torch.float32).view(1, W)
    x = 0.3 + 0.05 * torch.randn(len(spots), 1, H, W, generator=g)
    for b, (r, c) in enumerate(spots):
        x[b, 0] += 0.7 * torch.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 8.0)
    return x.expand(-1, 3, -1, -1).contiguous()


@pytest.mark.parametrize("size", [(32, 32), (20, 27)])
def test_saliency_map_is_the_spectral_residual(size):
    """The map against the formula written literally with complex ops: log amplitude, its 3×3
    mean (replicate borders), the residual, exp(R + i·phase), inverse FFT, |·|², Gaussian blur."""
    from msda_cli.mixing.saliency import WORK_SIZE, _gaussian_taps, saliency_map

    x = torch.rand(3, 3, *size, generator=gen(7))
    spec = torch.fft.fft2(x.mean(dim=1))
    log_amp = torch.log(spec.abs())
    padded = torch.nn.functional.pad(log_amp[:, None], (1, 1, 1, 1), mode="replicate")
    residual = log_amp - torch.nn.functional.avg_pool2d(padded, 3, stride=1)[:, 0]
    sal = torch.fft.ifft2(torch.exp(residual + 1j * torch.angle(spec))).abs() ** 2
    taps = _gaussian_taps(max(1.0, 2.5 * size[1] / WORK_SIZE))
    r = taps.numel() // 2
    blurred = torch.nn.functional.pad(sal[:, None], (r, r, r, r), mode="replicate")
    kernel = (taps[:, None] * taps[None, :])[None, None]
    expected = torch.nn.functional.conv2d(blurred, kernel)[:, 0]
    got = saliency_map(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.abs().max().item())


def test_salient_centre_finds_the_object():
    from msda_cli.mixing.saliency import salient_centres

    spots = [(32, 10), (7, 27), (40, 30)]
    c = salient_centres(blob_images(spots, 48, 40))
    for (r, col), found in zip(spots, c.tolist()):
        assert abs(found[0] - r) <= 1 and abs(found[1] - col) <= 1
    big = salient_centres(blob_images([(150, 60)], 224, 200))  # worked on a 64-px copy
    assert abs(big[0, 0].item() - 150) <= 4 and abs(big[0, 1].item() - 60) <= 4


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_saliencymix_box_is_centred_on_the_partners_object(mode):
    B, H, W = 4, 48, 48
    spots = [(10, 10), (36, 12), (12, 36), (36, 36)]
    x = blob_images(spots, H, W)
    y = torch.arange(B)
    out = build("saliencymix", mode)(x, y, C, generator=gen(0), lam=0.84)  # 19×19 box
    perm = out.index[1]
    for b in range(B if mode == "sample" else 1):
        rows, cols = torch.nonzero(out.mask[b, 0] == 0, as_tuple=True)
        r, c = spots[int(perm[b])]
        assert abs((rows.min() + rows.max()).item() / 2 - r) <= 3
        assert abs((cols.min() + cols.max()).item() / 2 - c) <= 3
    if mode == "batch":
        assert (out.mask == out.mask[:1]).all()


# ---- MixupE ------------------------------------------------------------------------------

def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 6), nn.Tanh(), nn.Linear(6, C))


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("alpha,eta", [(1.0, 0.5), (0.4, 0.05)])
def test_mixupe_paper_matches_hand_computation(alpha, eta):
    x, y = batch(6, 4, 4)
    model = tiny_model()
    res = build("mixupe", alpha=alpha, eta=eta)(x, y, C, generator=gen(1))  # the draws MixupE will make
    out = build("mixupe", alpha=alpha, eta=eta).loss(model, x, y, C, generator=gen(1))
    out.loss.backward()
    g_impl = grads(model)
    model.zero_grad()
    # by hand
    l_mix = soft_cross_entropy(model(res.x), res.y)
    f = model(x)
    p = torch.softmax(f, 1)
    Y = one_hot(y, C)
    q = torch.stack([(Y[i] - p[i]) @ f[i] for i in range(6)])
    e = 1 - (alpha + 1) / (2 * alpha + 1)
    R = e * q.abs().mean()
    assert (expected_one_minus_lam(alpha) * q_hat(f, y, C).abs().mean()).item() == pytest.approx(R.item(), rel=1e-5)
    assert out.value.item() == pytest.approx(l_mix.item(), rel=1e-6)
    scale = (l_mix.abs() / (l_mix + eta * R).abs()).detach()
    (scale * (l_mix + eta * R)).backward()
    for a, b in zip(g_impl, grads(model)):
        assert torch.allclose(a, b, atol=1e-6)
    # the extra term really changes the gradient
    model.zero_grad()
    l_mix2 = soft_cross_entropy(model(res.x), res.y)
    l_mix2.backward()
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(g_impl, grads(model)))


def test_mixupe_eta_zero_is_exactly_mixup():
    x, y = batch(6, 4, 4)
    model = tiny_model()
    for variant in ("paper", "code"):
        model.zero_grad()
        a = build("mixupe", eta=0.0, variant=variant).loss(model, x, y, C, generator=gen(2))
        a.loss.backward()
        ga = grads(model)
        model.zero_grad()
        b = build("mixup").loss(model, x, y, C, generator=gen(2))
        b.loss.backward()
        assert a.loss.item() == pytest.approx(b.loss.item(), abs=1e-6)
        for u, v in zip(ga, grads(model)):
            assert torch.allclose(u, v, atol=1e-6)


def test_mixupe_code_variant_matches_hand_computation():
    alpha, eta = 1.0, 0.3
    x, y = batch(6, 4, 4)
    model = tiny_model()
    res = build("mixupe")(x, y, C, generator=gen(3))
    out = build("mixupe", alpha=alpha, eta=eta, variant="code").loss(model, x, y, C, generator=gen(3))
    l_mix = soft_cross_entropy(model(res.x), res.y)
    f = model(x)
    q = ((one_hot(y, C) - torch.softmax(f, 1)) * f).sum(1)
    e = 1 - (alpha + 1) / (2 * alpha + 1)
    expected = l_mix - eta * e * q[q < 1].sum() / 6
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.value.item() == pytest.approx(l_mix.item(), rel=1e-6)


def test_mixupe_batches_the_clean_forward():
    calls = []
    model = tiny_model()
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    x, y = batch(5, 4, 4)
    build("mixupe").loss(model, x, y, C, generator=gen(0))
    assert calls == [10]


# ---- Manifold Mixup ----------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.ReLU())
        self.b = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Linear(8, C)

    def forward(self, x):
        return self.head(self.b(self.a(x)))

    def manifold_layers(self):
        return [self.a, self.b]


class Wrapper(nn.Module):  # like DDP: the model is `.module`
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


def test_manifold_mixup_mixes_the_chosen_layer():
    net = TwoLayer()
    model = Wrapper(net)
    x, y = batch(5, 4, 4)
    mixer = build("manifold-mixup", alpha=1.0)
    seen = set()
    for seed in range(12):
        g = gen(seed)
        params = mixer.draw(tuple(x.shape), g)
        choice = int(torch.randint(0, 3, (1,), generator=g))
        seen.add(choice)
        lam, perm = float(params["lam"][0]), params["index"][1]
        h = net.a(x)
        if choice == 0:
            h = net.a(lam * x + (1 - lam) * x[perm])
        elif choice == 1:
            h = lam * h + (1 - lam) * h[perm]
        h = net.b(h)
        if choice == 2:
            h = lam * h + (1 - lam) * h[perm]
        logits = net.head(h)
        Y = one_hot(y, C)
        expected = soft_cross_entropy(logits, lam * Y + (1 - lam) * Y[perm])
        out = mixer.loss(model, x, y, C, generator=gen(seed))
        assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5), (seed, choice)
        assert torch.allclose(out.logits, logits, atol=1e-5)
    assert seen == {0, 1, 2}
    assert not net.a._forward_hooks and not net.b._forward_hooks  # hooks removed


class FourLayer(nn.Module):
    """Four hidden layers; records which one had a forward hook when it ran."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(3 * 4 * 4 if i == 0 else 8, 8) for i in range(4))
        self.head = nn.Linear(8, C)

    def forward(self, x):
        h = x.flatten(1)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.head(h)

    def manifold_layers(self):
        return list(self.hidden)


@pytest.mark.parametrize("layers, eligible", [(2, {0, 1, 2}), (4, {0, 1, 2, 3, 4}), (9, {0, 1, 2, 3, 4}), (0, {0})])
def test_manifold_mixup_chooses_the_input_or_one_of_the_first_layers(layers, eligible):
    """k uniform on {0, …, layers}: the input (0) or the k-th hidden layer (the authors: {0, 1, 2})."""
    net = FourLayer()
    mixed = []  # per forward: the hidden layer carrying the mixer's hook when it ran (1-based)
    for i, m in enumerate(net.hidden, start=1):
        m.register_forward_pre_hook(lambda mod, inp, i=i: mixed.append(i) if mod._forward_hooks else None)
    x, y = batch(4, 4, 4)
    mixer = build("manifold-mixup", layers=layers)
    counts = dict.fromkeys(range(5), 0)
    for seed in range(300):
        mixed.clear()
        mixer.loss(net, x, y, C, generator=gen(seed))
        assert len(mixed) <= 1
        counts[mixed[0] if mixed else 0] += 1
    assert {k for k, v in counts.items() if v} == eligible
    for k in eligible:  # uniform: each about 300 / |eligible|
        assert abs(counts[k] - 300 / len(eligible)) < 5 * (300 / len(eligible)) ** 0.5


def test_manifold_layers_of_residual_nets_are_their_stages():
    from msda_cli.models import build_model

    for name in ["preactresnet18", "resnet56", "wrn28-2"]:
        net = build_model(name, num_classes=10)
        assert net.manifold_layers() == list(net.stages()), name


# ---- agreement with timm -------------------------------------------------------------------

def timm_mix(monkeypatch, x, y, perm, lam, centre=None, cutmix=False, smoothing=0.1):
    """timm's batch-mode Mixup/CutMix on [x; x[perm].flip(0)], with its draws pinned to ours."""
    import numpy as np
    import timm.data.mixup as tm

    monkeypatch.setattr(tm.np.random, "rand", lambda *a: 0.0)
    monkeypatch.setattr(tm.np.random, "beta", lambda *a, **k: lam)
    if centre is not None:
        draws = iter(centre)
        monkeypatch.setattr(tm.np.random, "randint", lambda *a, **k: np.int64(next(draws)))
    mixer = tm.Mixup(mixup_alpha=0.0 if cutmix else 1.0, cutmix_alpha=1.0 if cutmix else 0.0,
                     label_smoothing=smoothing, num_classes=C, mode="batch")
    z = torch.cat([x, x[perm].flip(0)])
    t = torch.cat([y, y[perm].flip(0)])
    zx, zy = mixer(z.clone(), t)
    B = x.shape[0]
    return zx[:B], zy[:B]


def test_mixup_agrees_with_timm(monkeypatch):
    x, y = batch(6, 16, 16)
    out = build("mixup", smoothing=0.1)(x, y, C, generator=gen(0), lam=0.37)
    tx, ty = timm_mix(monkeypatch, x, y, out.index[1], 0.37)
    assert torch.allclose(out.x, tx, atol=1e-6) and torch.allclose(out.y, ty, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cutmix_agrees_with_timm(monkeypatch, seed):
    x, y = batch(6, 20, 16)
    mixer = build("cutmix", smoothing=0.1)
    lam = 0.3 + 0.15 * seed
    params = mixer.draw(tuple(x.shape), gen(seed), lam=lam)
    out = mixer.apply(x, y, C, params)
    # recover the centre our box was drawn around (bounds are centre ± half sides, clipped)
    g = gen(seed)
    torch.randperm(6, generator=g)
    cy, cx = int(torch.randint(0, 20, (1,), generator=g)), int(torch.randint(0, 16, (1,), generator=g))
    tx, ty = timm_mix(monkeypatch, x, y, out.index[1], lam, centre=(cy, cx), cutmix=True)
    assert torch.equal(out.x, tx)
    assert torch.allclose(out.y, ty, atol=1e-6)


@pytest.mark.parametrize("name,mode", [(n, m) for n in IMAGE_ONLY for m in ("batch", "sample")])
def test_channels_last_input_gives_the_same_mix(name, mode):
    x, y = batch(6, 16, 12)
    mixer = build(name, mode)
    a = mixer(x, y, C, generator=gen(7))
    b = mixer(x.contiguous(memory_format=torch.channels_last), y, C, generator=gen(7))
    assert torch.allclose(a.x, b.x, atol=1e-6) and torch.equal(a.y, b.y)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_saliency_dcutmix_patches_sit_on_their_sources_objects(mode):
    B, H, W = 4, 48, 48
    spots = [(10, 10), (36, 12), (12, 36), (36, 36)]
    x = blob_images(spots, H, W)
    out = build("saliency-dcutmix", mode, k=2, alpha=1.0)(x, torch.arange(B), C, generator=gen(0), lam=0.8)
    for b in range(B if mode == "sample" else 1):
        rows, cols = torch.nonzero(out.sources[b, 0] == 1, as_tuple=True)
        r, c = spots[int(out.index[1, b])]
        assert abs((rows.min() + rows.max()).item() / 2 - r) <= 3
        assert abs((cols.min() + cols.max()).item() / 2 - c) <= 3
    assert torch.allclose(out.shares[:, 1], (out.sources == 1).double().mean((1, 2, 3)).float())


def test_dcutmix_prob_is_one_coin_per_batch_in_sample_mode():
    # METHODS.md: the whole mix is applied to a batch with probability p.
    x, y = batch(6, 16, 16)
    seen = set()
    for seed in range(40):
        out = build("dcutmix", "sample", k=3, prob=0.5)(x, y, C, generator=gen(seed))
        mixed = (out.shares[:, 0] < 1).tolist()
        assert len(set(mixed)) == 1 or all(mixed)  # never some samples mixed and others not by the coin
        seen.add(any(mixed))
    assert seen == {True, False}


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cutmix_prob_mixes_a_batch_with_probability_prob_else_keeps_its_one_hot_targets(mode):
    """The CutMix code's `cutmix_prob`: one coin per batch; an unmixed batch is x with one-hot (smoothed) targets."""
    x, y = batch(6, 16, 16)
    mixed = []
    for seed in range(400):
        out = build("cutmix", mode, prob=0.5, smoothing=0.1)(x, y, C, generator=gen(seed))
        again = build("cutmix", mode, prob=0.5, smoothing=0.1)(x, y, C, generator=gen(seed))
        assert torch.equal(out.x, again.x) and torch.equal(out.y, again.y)  # deterministic under the generator
        if bool((out.lam == 1).all()):
            assert torch.equal(out.x, x) and torch.equal(out.y, one_hot(y, C, 0.1))
        mixed.append(bool((out.lam < 1).any()))
    assert 160 < sum(mixed) < 240  # ~ Binomial(400, 0.5) (a box of area exactly 0 otherwise is rare)
    # prob 1 draws no coin: λ and the partners, then the box, as before the method had `prob`
    from msda_cli.mixing.cutmix import draw_centred_boxes

    mixer, g = build("cutmix", mode), gen(3)
    pair = mixer.draw_pair(1.0, 6, g, None)
    params = mixer.draw(tuple(x.shape), gen(3))
    assert torch.equal(params["bounds"], draw_centred_boxes(1.0 - pair["lam"], 16, 16, g))


def test_mixupe_erm_ablation_adds_the_term_to_plain_cross_entropy():
    """MixupE Table 7's 'ERM + additional loss': no mixing, the same extra term."""
    alpha, eta = 1.0, 0.5
    x, y = batch(6, 4, 4)
    model = tiny_model()
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    out = build("mixupe", alpha=alpha, eta=eta, erm=True).loss(model, x, y, C, generator=gen(4))
    handle.remove()
    assert calls == [6]  # one forward over the clean batch
    out.loss.backward()
    g_impl = grads(model)
    model.zero_grad()
    f = model(x)
    ce = torch.nn.functional.cross_entropy(f, y)
    q = ((one_hot(y, C) - torch.softmax(f, 1)) * f).sum(1)
    R = (1 - (alpha + 1) / (2 * alpha + 1)) * q.abs().mean()
    assert out.value.item() == pytest.approx(ce.item(), rel=1e-6)
    assert (expected_one_minus_lam(alpha) * q_hat(f, y, C).abs().mean()).item() == pytest.approx(R.item(), rel=1e-5)
    ((ce.abs() / (ce + eta * R).abs()).detach() * (ce + eta * R)).backward()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_impl, grads(model)))
    mixed = build("mixupe", erm=True)(x, y, C, generator=gen(4))
    assert torch.equal(mixed.x, x) and torch.equal(mixed.y, one_hot(y, C))
    with pytest.raises(MsdaError, match="erm"):
        build("mixupe", erm="yes")
