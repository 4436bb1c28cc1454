"""a_jk maps over the same interior pixels at every offset (`interior=True`, the CLI's default):
the FFT correlation against a direct sum, the Monte-Carlo maps against the exact enumerations and
the closed forms, and GMix's map isotropic inside where the whole-image map is not."""

from __future__ import annotations

import numpy as np
import torch

from msda_cli.analysis import coeffs as C


def test_interior_lag_means_match_a_direct_sum_over_one_pixel_set():
    u = torch.rand(2, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = 3
    got = C.lag_means(u, m, interior=True)
    inner = [(y, x) for y in range(m, 9 - m) for x in range(m, 11 - m)]
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            want = torch.stack([u[:, y, x] * u[:, y + dy, x + dx] for y, x in inner]).mean(0)
            assert torch.allclose(got[:, dy + m, dx + m], want, atol=1e-12)
    # at offset 0 both pixel sets are means of u², over different pixels: the interior is not the whole image
    assert not torch.allclose(got[:, m, m], C.lag_means(u, m)[:, m, m])


def test_interior_cutmix_and_hmix_estimates_match_their_enumerations():
    lam, size, m = 0.6, 14, 4
    cut = C.estimate_map("cutmix", lam, size=size, draws=20000, max_offset=m, seed=1, interior=True)
    exact = C.cutmix_map(lam, size, m, interior=True)
    assert np.allclose(cut.exact, exact) and not np.allclose(exact, C.cutmix_map(lam, size, m))
    assert (np.abs(cut.estimate - exact) / (cut.se + 1e-4)).max() < 5.0
    hm = C.estimate_map("hmix", lam, size=size, draws=20000, max_offset=m, seed=2, interior=True, hparams={"r": 0.75})
    assert (np.abs(hm.estimate - hm.exact) / (hm.se + 1e-4)).max() < 5.0
    mixup = C.estimate_map("mixup", 0.3, size=size, draws=16, max_offset=m, interior=True)
    assert np.allclose(mixup.estimate, 0.49) and np.allclose(mixup.exact, 0.49)


def test_interior_gmix_map_is_isotropic_where_the_whole_image_map_is_not():
    """Offsets of equal length (0, 5) and (3, 4): equal in the closed form; inside, the estimate agrees;
    over the whole image the border pixels that drop out of (0, 5) and (3, 4) differ, and so do the values."""
    lam, size, m = 0.7, 24, 5
    inside = C.estimate_map("gmix", lam, size=size, draws=6000, max_offset=m, seed=3, interior=True)
    whole = C.estimate_map("gmix", lam, size=size, draws=6000, max_offset=m, seed=3)
    a, b = (m + 0, m + 5), (m + 3, m + 4)
    assert abs(inside.estimate[a] - inside.estimate[b]) < 4 * np.hypot(inside.se[a], inside.se[b])
    assert abs(whole.estimate[a] - whole.estimate[b]) > 4 * np.hypot(whole.se[a], whole.se[b])
    assert inside.exact[a] == inside.exact[b]


def test_interior_needs_a_pixel_max_offset_inside():
    import pytest

    from msda_cli.errors import MsdaError

    C.check_geometry(17, 8, interior=True)
    with pytest.raises(MsdaError, match="no interior pixel"):
        C.check_geometry(16, 8, interior=True)
    C.check_geometry(16, 8)
