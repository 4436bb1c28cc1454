"""`msda analyze`: coefficient maps a_jk against their exact / closed forms, the partial gradient
product (eq. 12) of a trained digits run against autograd by hand, and bad input."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch

from conftest import query, train_shared_runs
from msda_cli.analysis import coeffs as C
from msda_cli.metric_names import ANALYSIS, GRADPROD, LANDSCAPE_LOSS, LANDSCAPE_TOP1

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "1"]


# ---- coefficient maps --------------------------------------------------------------------------

def test_lag_means_match_a_direct_sum():
    """The FFT autocorrelation is the mean over valid i of u_i·u_{i+d}, for every offset d."""
    u = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = 4
    got = C.lag_means(u, m)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            vals = [u[:, y, x] * u[:, y + dy, x + dx] for y in range(7) for x in range(9)
                    if 0 <= y + dy < 7 and 0 <= x + dx < 9]
            assert torch.allclose(got[:, dy + m, dx + m], torch.stack(vals).mean(0), atol=1e-12)


def test_mixup_coefficients_are_one_minus_lambda_squared_at_every_offset():
    lam = 0.3
    cm = C.estimate_map("mixup", lam, size=10, draws=64, max_offset=4)
    assert cm.estimate.shape == (9, 9)
    assert np.allclose(cm.estimate, (1 - lam) ** 2, atol=1e-6)
    assert np.allclose(cm.by_distance, (1 - lam) ** 2, atol=1e-6)
    assert np.allclose(cm.exact, (1 - lam) ** 2)


def test_cutmix_estimate_matches_exact_enumeration():
    lam, size, m, n = 0.6, 12, 6, 20000
    cm = C.estimate_map("cutmix", lam, size=size, draws=n, max_offset=m, seed=1)
    exact = C.cutmix_map(lam, size, m)
    assert np.allclose(cm.exact, exact)
    z = np.abs(cm.estimate - exact) / (cm.se + 1e-4)
    assert z.max() < 5.0
    # CutMix decays with distance (a flat, Mixup-like map would fail here)
    assert exact[m, m] - exact[0, 0] > 0.1 and cm.estimate[m, m] - cm.estimate[0, 0] > 0.1
    assert cm.by_distance[0] - cm.by_distance[-1] > 0.05


def test_cutmix_map_is_the_offset_mean_of_the_full_matrix():
    lam, H = 0.45, 9
    a = C.cutmix_coefficients(lam, H, H).numpy()
    m = 3
    got = C.cutmix_map(lam, H, m)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            vals = [a[y * H + x, (y + dy) * H + x + dx] for y in range(H) for x in range(H)
                    if 0 <= y + dy < H and 0 <= x + dx < H]
            assert got[dy + m, dx + m] == pytest.approx(np.mean(vals), abs=1e-12)
    # the diagonal is P(pixel in the clipped box): its mean is the expected clipped share < 1 − λ
    assert 0 < np.mean(np.diag(a)) < 1 - lam


def test_gmix_matches_the_closed_form_away_from_the_border():
    lam, size, m = 0.9, 32, 4
    s = 1 - lam
    cm = C.estimate_map("gmix", lam, size=size, draws=8000, max_offset=m, margin=10, hparams={"alpha": 1.0})
    dy, dx = C.offset_grid(m)
    closed = s / 2 * np.exp(-math.pi * (dy ** 2 + dx ** 2) / (2 * s * size * size))
    assert np.allclose(cm.exact, closed)
    assert np.allclose(cm.estimate, closed, rtol=0.05)
    assert (np.abs(cm.estimate - closed) / cm.se).max() < 5.0
    # over the whole image the border cuts the blob: the map falls well short of the closed form
    whole = C.estimate_map("gmix", lam, size=size, draws=2000, max_offset=m, hparams={"alpha": 1.0})
    assert (whole.estimate < 0.97 * closed).all()


def test_hmix_estimate_matches_its_enumeration_and_lies_between_mixup_and_cutmix():
    lam, size, m = 0.5, 16, 5
    cm = C.estimate_map("hmix", lam, size=size, draws=6000, max_offset=m, hparams={"r": 0.5})
    assert (np.abs(cm.estimate - cm.exact) / (cm.se + 1e-4)).max() < 5.0
    cut = C.cutmix_map(lam, size, m)
    # decay from offset 0 to the far corner: none for Mixup, most for CutMix, HMix in between
    decay = lambda a: a[m, m] - a[0, 0]  # noqa: E731
    assert 0.01 < decay(cm.exact) < decay(cut)


@pytest.mark.parametrize("method,kw", [("cutmix", {}), ("hmix", {"r": 0.75}), ("gmix", {}), ("fmix", {})])
def test_maps_are_symmetric(method, kw):
    cm = C.estimate_map(method, 0.55, size=12, draws=500, max_offset=5, hparams=kw)
    assert np.allclose(cm.estimate, cm.estimate[::-1, ::-1], atol=1e-12)
    if cm.exact is not None:
        assert np.allclose(cm.exact, cm.exact[::-1, ::-1], atol=1e-12)


def test_input_level_mixup_methods_say_so_and_k_image_methods_are_refused():
    cm = C.estimate_map("mixupe", 0.2, size=8, draws=8, max_offset=2)
    assert np.allclose(cm.estimate, 0.64, atol=1e-6) and "Mixup" in cm.notes[0]
    with pytest.raises(ValueError, match="K images"):
        C.estimate_map("dcutmix", 0.5, size=8, draws=8, max_offset=2)


def test_cli_coeffs_csv_and_png(msda, tmp_path, db_path):
    png = tmp_path / "x.png"
    r = msda("analyze", "coeffs", "--method", "mixup,cutmix", "--lam", "0.5", "--size", "16", "--draws", "400",
             "--max-offset", "4", "--format", "csv", "--out", png)
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row["method"] for row in rows} == {"mixup", "cutmix"}
    distances = sorted({float(row["distance"]) for row in rows})
    assert distances[0] == 0.0 and distances[-1] == 4.0 and len(rows) == 2 * len(distances)
    mixup = [row for row in rows if row["method"] == "mixup"]
    assert all(abs(float(row["estimate"]) - 0.25) < 1e-6 for row in mixup)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not db_path.exists()  # no database needed


# ---- gradient product ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A digits-vanilla run (16 px) and a tabular (iris) run in a shared results directory."""
    db = train_shared_runs(tmp_path_factory.mktemp("analysis-results"), ["--recipe", "digits-vanilla", *FAST],
                           ["--recipe", "abalone-vanilla", "--set", "dataset=iris", "--epochs", "1"])
    runs = dict((d, i) for i, d in query(db, "SELECT id, dataset FROM run"))
    return db, runs


@pytest.fixture
def env(trained, monkeypatch):
    db, runs = trained
    monkeypatch.setenv("MSDA_RESULTS", str(db.parent))
    monkeypatch.setenv("MSDA_DB", str(db))
    return db, runs


def _by_hand(db, run_id, n, seed):
    """Per image: |∂f/∂x| [H, W] of the true-class softmax probability, one image at a time."""
    from msda_cli.evaluation import select_indices
    from msda_cli.runs import load_run
    from msda_cli.store import Store

    loaded = load_run(Store(db, create=False), run_id)
    grads = []
    for i in select_indices(len(loaded.test_set), n, seed).tolist():
        x, y = loaded.test_set[i]
        x = x.unsqueeze(0).clone().requires_grad_(True)
        p = torch.softmax(loaded.model(x), dim=1)[0, y]
        (g,) = torch.autograd.grad(p, x)
        grads.append(g[0].double().norm(dim=0))  # one channel: |g|
    return grads


def test_gradprod_stores_one_row_per_distance_and_matches_autograd(msda, env, tmp_path):
    db, runs = env
    run = runs["digits"]
    png = tmp_path / "g.png"
    r = msda("analyze", "gradprod", run, "--n-examples", "3", "--batch-size", "2", "--max-offset", "3",
             "--format", "json", "--out", png)
    assert r.code == 0, r.stderr
    printed = json.loads(r.stdout)
    rows = [(v, json.loads(p)) for v, p in query(
        db, "SELECT value, params FROM metric WHERE run_id=? AND kind=? AND name=? AND epoch IS NULL ORDER BY id",
        run, ANALYSIS, GRADPROD)]
    distances = [p["offset_distance"] for _, p in rows]
    assert distances == [0.0, 1.0, 1.4142, 2.0, 2.2361, 2.8284, 3.0]
    assert all(p["n_examples"] == 3 and p["seed"] == 0 and p["output"] == "prob" for _, p in rows)
    assert [row["gradprod"] for row in printed] == pytest.approx([v for v, _ in rows])
    assert printed[0]["normalized"] == 1.0
    grads = _by_hand(db, run, 3, 0)
    # p = 0: max_v g_v², averaged over the images
    assert rows[0][0] == pytest.approx(np.mean([float((g ** 2).max()) for g in grads]), rel=1e-5)
    # ‖p‖ = 1: the four unit offsets, each max_v |g_v g_{v+p}| over v with v + p inside, pixel by pixel
    H, W = grads[0].shape
    per_offset = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        per_offset.append(np.mean([max(float(g[y, x] * g[y + dy, x + dx]) for y in range(H) for x in range(W)
                                        if 0 <= y + dy < H and 0 <= x + dx < W) for g in grads]))
    assert rows[1][0] == pytest.approx(np.mean(per_offset), rel=1e-5)
    assert rows[0][0] >= rows[1][0] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,message", [
    (["coeffs", "--method", "supermix"], "unknown method 'supermix'"),
    (["coeffs", "--method", "mixup", "--lam", "1.5"], "--lam"),
    (["coeffs", "--method", "mixup", "--lam", "-0.1"], "--lam"),
    (["coeffs", "--method", "dmixup"], "K images"),
    (["coeffs", "--method", "hmix", "--set", "r=2"], "r must be in [0, 1], got 2"),
    (["coeffs", "--method", "mixup", "--size", "8", "--max-offset", "8"], "--max-offset"),
    (["gradprod", "deadbeef"], "unknown run id 'deadbeef'"),
    (["gradprod", "{iris}"], "not images"),
    (["gradprod", "{digits}", "--max-offset", "16"], "--max-offset"),
    (["gradprod", "{digits}", "--output", "margin"], "--output"),
    (["gradprod", "{digits}", "--n-examples", "0"], "--n-examples"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(msda, env, tmp_path, args, message):
    db, runs = env
    before = query(db, "SELECT count(*) FROM metric")
    png = tmp_path / "never.png"
    r = msda("analyze", *[a.format(**runs) for a in args], "--out", png)
    assert r.code == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert query(db, "SELECT count(*) FROM metric") == before
    assert not png.exists()


def test_run_without_checkpoint_is_refused(msda, env):
    from msda_cli.store import Store

    db, _ = env
    run = Store(db).create_run(dataset="digits", arch="digits-cnn", method="vanilla", config="{}")
    r = msda("analyze", "gradprod", run.id)
    assert r.code == 2 and "no checkpoint" in r.stderr
    assert query(db, "SELECT count(*) FROM metric WHERE run_id=?", run.id) == [(0,)]


# ---- loss landscape -----------------------------------------------------------------------------

def _small_net():
    from msda_cli.models import Normalized, build_model

    torch.manual_seed(0)
    model = Normalized(build_model("digits-cnn", num_classes=10, in_chans=1, width=4), [0.5], [0.25])
    for m in model.modules():  # non-trivial BatchNorm parameters and statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_direction_is_filter_normalized_and_ignores_biases_and_batchnorm():
    from msda_cli.analysis import landscape as L

    model = _small_net()
    d = L.filter_normalized_direction(model, torch.Generator().manual_seed(3))
    params = dict(model.named_parameters())
    assert set(d) == set(params)
    filters = {n for n in params if n.endswith(".weight") and params[n].dim() > 1}
    assert L.filter_weights(model) == filters and len(filters) == 4  # three convs and the linear head
    for name, p in params.items():
        if name in filters:
            theta = p.detach().flatten(1).norm(dim=1)
            assert torch.allclose(d[name].flatten(1).norm(dim=1), theta, rtol=1e-5, atol=0)
            assert theta.std() > 0  # per-filter norms differ: one global rescaling would fail above
            cos = (d[name].flatten() @ p.detach().flatten()) / (d[name].norm() * p.detach().norm())
            assert abs(float(cos)) < 0.9  # random, not θ itself
        else:  # linear bias, BatchNorm weight and bias
            assert torch.count_nonzero(d[name]) == 0, name
    again = L.filter_normalized_direction(model, torch.Generator().manual_seed(3))
    other = L.filter_normalized_direction(model, torch.Generator().manual_seed(4))
    assert all(torch.equal(d[n], again[n]) for n in d)
    assert not torch.equal(d["net.head.2.weight"], other["net.head.2.weight"])


def test_sweep_at_t_zero_is_the_model_itself_and_leaves_the_weights_alone():
    from msda_cli.analysis import landscape as L

    model = _small_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 8, 8, generator=g), torch.randint(0, 10, (20,), generator=g)
    model.train()  # sweep evaluates with the running statistics and gives the mode back
    ts, loss, top1 = L.sweep(model, [(x[:8], y[:8]), (x[8:], y[8:])], span=0.5, points=5, directions=2, seed=1)
    assert model.training
    model.eval()
    assert ts.tolist() == [-0.5, -0.25, 0.0, 0.25, 0.5] and loss.shape == top1.shape == (2, 5)
    with torch.no_grad():
        logits = model(x)
    direct = float(torch.nn.functional.cross_entropy(logits.double(), y))
    assert loss[:, 2] == pytest.approx([direct, direct], rel=1e-12)
    assert top1[:, 2].tolist() == [100.0 * int(logits.argmax(1).eq(y).sum()) / 20] * 2
    assert not np.allclose(loss[0], loss[0, 2]) and not np.allclose(loss[0], loss[1])  # d moves, directions differ
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_landscape_of_a_run_at_t_zero_matches_a_direct_evaluation(env):
    from msda_cli.analysis.landscape import landscape
    from msda_cli.evaluation import select_indices
    from msda_cli.runs import load_run
    from msda_cli.store import Store

    db, runs = env
    store = Store(db, create=False)
    res = landscape(store, runs["digits"], span=0.5, points=3, n_examples=40, batch_size=16, seed=2)
    loaded = load_run(store, runs["digits"])
    idx = select_indices(len(loaded.test_set), 40, 2).tolist()
    x = torch.stack([loaded.test_set[i][0] for i in idx])
    y = torch.tensor([int(loaded.test_set[i][1]) for i in idx])
    with torch.no_grad():
        logits = loaded.model(x)
    assert res.t.tolist() == [-0.5, 0.0, 0.5] and res.n_examples == 40
    assert res.loss[0, 1] == pytest.approx(float(torch.nn.functional.cross_entropy(logits.double(), y)), rel=1e-6)
    assert res.top1[0, 1] == pytest.approx(100.0 * float(logits.argmax(1).eq(y).float().mean()))
    assert query(db, "SELECT count(*) FROM metric WHERE name LIKE 'landscape%'") == [(0,)]  # the API stores nothing


def test_cli_landscape_stores_one_row_per_direction_and_t_and_plots(msda, env, tmp_path):
    db, runs = env
    run = runs["digits"]
    png = tmp_path / "l.png"
    r = msda("analyze", "landscape", run, "--span", "1", "--points", "5", "--directions", "2",
             "--n-examples", "64", "--seed", "1", "--format", "json", "--out", png)
    assert r.code == 0, r.stderr
    printed = json.loads(r.stdout)
    assert [row["t"] for row in printed] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    stored = {}
    for name, value, params in query(db, "SELECT name, value, params FROM metric WHERE run_id=? AND kind=? "
                                         "AND name IN (?, ?) AND epoch IS NULL ORDER BY id",
                                     run, ANALYSIS, LANDSCAPE_LOSS, LANDSCAPE_TOP1):
        p = json.loads(params)
        assert {k: p[k] for k in ("seed", "span", "points", "n_examples")} == {"seed": 1, "span": 1.0, "points": 5,
                                                                               "n_examples": 64}
        stored[name, p["direction"], p["t"]] = value
    keys = {(k, t) for k in (0, 1) for t in (-1.0, -0.5, 0.0, 0.5, 1.0)}
    assert len(stored) == 20 and {(k, t) for _, k, t in stored} == keys
    assert {n for n, _, _ in stored} == {LANDSCAPE_LOSS, LANDSCAPE_TOP1}
    for row in printed:  # the table is the mean over the two directions
        assert row["loss"] == pytest.approx(np.mean([stored[LANDSCAPE_LOSS, k, row["t"]] for k in (0, 1)]))
        assert row["top1"] == pytest.approx(np.mean([stored[LANDSCAPE_TOP1, k, row["t"]] for k in (0, 1)]))
    # t = 0 is the trained model for both directions; a step of ‖θ‖ per filter costs loss either way
    assert stored[LANDSCAPE_LOSS, 0, 0.0] == stored[LANDSCAPE_LOSS, 1, 0.0]
    assert printed[0]["loss"] > printed[2]["loss"] < printed[4]["loss"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["deadbeef"], "unknown run id 'deadbeef'"),
    (["{digits}", "--span", "0"], "--span"),
    (["{digits}", "--span", "-1"], "--span"),
    (["{digits}", "--points", "2"], "--points"),
    (["{digits}", "--directions", "0"], "--directions"),
    (["{digits}", "--n-examples", "0"], "--n-examples"),
    (["{digits}", "--format", "yaml"], "format"),
])
def test_landscape_bad_input_is_one_line_exit_2_and_writes_nothing(msda, env, tmp_path, args, message):
    db, runs = env
    before = query(db, "SELECT count(*) FROM metric")
    png = tmp_path / "never.png"
    r = msda("analyze", "landscape", *[a.format(**runs) for a in args], "--out", png)
    assert r.code == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert query(db, "SELECT count(*) FROM metric") == before
    assert not png.exists()


def test_landscape_refuses_a_missing_output_directory_and_a_run_without_checkpoint(msda, env, tmp_path):
    from msda_cli.store import Store

    db, runs = env
    before = query(db, "SELECT count(*) FROM metric")
    r = msda("analyze", "landscape", runs["digits"], "--out", tmp_path / "nope" / "l.png")
    assert r.code == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    run = Store(db).create_run(dataset="digits", arch="digits-cnn", method="vanilla", config="{}")
    r = msda("analyze", "landscape", run.id)
    assert r.code == 2 and "no checkpoint" in r.stderr
    assert query(db, "SELECT count(*) FROM metric") == before
