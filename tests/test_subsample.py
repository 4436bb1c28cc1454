"""`msda subsample`: anchored DCutMix mixes, the measures, per-class selection, the command."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import query
from msda_cli.metric_names import IMAGES_PER_S, TRAIN, TRAIN_TIME
from msda_cli.subsample import (
    ScoreSettings,
    draw_anchor_mixes,
    measures,
    mix_anchors,
    mix_losses,
    random_scores,
    select_indices,
)

DIGITS16 = ["--set", "data.options.image_size=16"]


# ----- the anchored mixes --------------------------------------------------------------------
@pytest.mark.parametrize("partners,share", [(2, 1 / 3), (3, 0.5)])
def test_anchor_label_weight_is_its_pixel_share(partners, share):
    """Every anchor gets its own class and a unique pixel value: its label weight in each mix
    must equal the fraction of pixels showing that value (not the drawn φ_0)."""
    B, M, H = 7, 9, 20
    settings = ScoreSettings(mixes=M, partners=partners, anchor_share=share)
    x = (torch.arange(B, dtype=torch.float32) + 1).view(B, 1, 1, 1).expand(B, 1, H, H).contiguous() / 10
    y = torch.arange(B)
    g = torch.Generator().manual_seed(3)
    params = draw_anchor_mixes(B, (1, H, H), settings, g)
    out = mix_anchors(x, y, B, params, settings)
    assert out.x.shape == (B * M, 1, H, H) and out.y.shape == (B * M, B)
    anchor = torch.arange(B).repeat_interleave(M)
    assert bool((params["partner"] != anchor).all())  # partners are other anchors
    for r in range(B * M):
        i = int(anchor[r])
        pixel_share = (out.x[r] == x[i, 0, 0, 0]).double().mean().item()
        assert out.y[r, i].item() == pytest.approx(pixel_share, abs=1e-6)
        assert out.lam[r].item() == pytest.approx(pixel_share, abs=1e-6)
        for c in range(B):  # every class's weight is its image's pixel share
            assert out.y[r, c].item() == pytest.approx((out.x[r] == x[c, 0, 0, 0]).double().mean().item(), abs=1e-6)
    # the anchor's share is fixed up to the rounding of the first box's sides
    assert (out.lam - share).abs().max().item() < 0.06
    assert len(set(out.lam.tolist())) == 1
    assert torch.allclose(out.y.sum(1), torch.ones(B * M))


def _hand_losses(model, x, y, num_classes, params, M, K):
    """One mix at a time with explicit nested pastes and pixel counting."""
    B, H, W = x.shape[0], x.shape[2], x.shape[3]
    out = np.zeros((B, M))
    for i in range(B):
        for m in range(M):
            r = i * M + m
            img = x[i].clone()
            owner = np.zeros((H, W), dtype=int)
            sources = [i]
            for k in range(1, K):
                y0, y1, x0, x1 = (int(v) for v in params["bounds"][r, k - 1])
                j = int(params["index"][k, r]) // M
                sources.append(j)
                img[:, y0:y1, x0:x1] = x[j][:, y0:y1, x0:x1]
                owner[y0:y1, x0:x1] = k
            label = np.zeros(num_classes)
            for k, j in enumerate(sources):
                label[int(y[j])] += (owner == k).mean()
            with torch.no_grad():
                logp = torch.log_softmax(model(img[None].float()), dim=-1)[0].double().numpy()
            out[i, m] = -(label * logp).sum()
    return out


def test_losses_and_cv_match_a_hand_loop():
    torch.manual_seed(0)
    B, M, C = 6, 5, 4
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 12 * 12, C)).eval()
    x = torch.rand(B, 3, 12, 12)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    settings = ScoreSettings(mixes=M, partners=2, partner_alpha=2 / 9, anchor_share=1 / 3)
    params = draw_anchor_mixes(B, (3, 12, 12), settings, torch.Generator().manual_seed(1))
    losses = mix_losses(model, x, y, C, params, settings).double().numpy()
    hand = _hand_losses(model, x, y, C, params, M, 3)
    np.testing.assert_allclose(losses, hand, rtol=1e-5, atol=1e-6)
    stats = measures(losses)
    cv = np.array([np.std(row) / np.mean(row) for row in hand])
    np.testing.assert_allclose(stats["cv"], cv, rtol=1e-5)
    np.testing.assert_allclose(stats["mean"], hand.mean(1), rtol=1e-5)
    assert np.ptp(stats["cv"]) > 0  # the measure separates the samples


# ----- selection -----------------------------------------------------------------------------
@pytest.mark.parametrize("select", ["top", "interval"])
@pytest.mark.parametrize("order", ["high", "low"])
def test_per_class_counts_are_rounded_ratio(select, order):
    sizes = [10, 7, 23, 5, 1, 4]
    targets = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(0).shuffle(targets)
    score = np.random.default_rng(1).random(len(targets))
    picked = select_indices(score, targets, 0.3, order, select)
    # round(0.3 * n), halves up: 3, 2.1 -> 2, 6.9 -> 7, 1.5 -> 2, 0.3 -> 0, 1.2 -> 1
    counts = np.bincount(targets[picked], minlength=len(sizes))
    assert counts.tolist() == [3, 2, 7, 2, 0, 1]
    assert len(np.unique(picked)) == len(picked) and picked.dtype == np.int64
    if select == "top":
        for c in range(len(sizes)):
            members = np.flatnonzero(targets == c)
            mine = picked[targets[picked] == c]
            rest = np.setdiff1d(members, mine)
            if len(mine) and len(rest):
                if order == "high":
                    assert score[mine].min() > score[rest].max()
                else:
                    assert score[mine].max() < score[rest].min()


@pytest.mark.parametrize("n,ratio,ranks", [(20, 0.25, [0, 4, 8, 12, 16]), (10, 0.3, [0, 3, 6]),
                                           (7, 1.0, list(range(7)))])
def test_interval_picks_evenly_spaced_ranks(n, ratio, ranks):
    perm = np.random.default_rng(n).permutation(n)
    score = perm.astype(float)  # sample i has rank (descending) n-1-perm[i]
    targets = np.zeros(n, dtype=int)
    high = select_indices(score, targets, ratio, "high", "interval")
    assert sorted((n - 1 - perm[high]).tolist()) == ranks
    low = select_indices(score, targets, ratio, "low", "interval")
    assert sorted(perm[low].tolist()) == ranks


def test_random_measure_is_seeded():
    targets = np.repeat(np.arange(3), 50)
    a = select_indices(random_scores(150, 0), targets, 0.2)
    b = select_indices(random_scores(150, 0), targets, 0.2)
    c = select_indices(random_scores(150, 1), targets, 0.2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.bincount(targets[a]).tolist() == [10, 10, 10]


# ----- the command ---------------------------------------------------------------------------
def _fake_run(db_path, checkpoint=True, epoch=3):
    """A stored digits (16 px) run with an untrained model checkpoint: no training needed."""
    from msda_cli.engine.build import build_data, build_network
    from msda_cli.engine.checkpoint import save_checkpoint
    from msda_cli.engine.launch import TrainRequest, resolve_configs
    from msda_cli.store import Store

    cfg = resolve_configs(TrainRequest(recipe="digits-vanilla", epochs=1, sets=["data.options.image_size=16"]))[0]
    store = Store(db_path)
    run = store.create_run(name="fake", recipe=cfg.name, dataset=cfg.dataset, arch=cfg.arch, method=cfg.method,
                           seed=0, config=cfg.model_dump_json())
    if checkpoint:
        torch.manual_seed(0)
        model = build_network(cfg, build_data(cfg, train=False).info)
        path = store.run_dir(run.id) / "checkpoint.pt"
        save_checkpoint(path, {"model": model.state_dict(), "epoch": epoch})
        store.update_run(run.id, checkpoint=str(path), epochs_done=epoch + 1)
    store.finish_run(run.id)
    return run.id, build_data(cfg, train=True, augment=False).targets.numpy()


def _subsets(db_path):
    rows = query(db_path, "SELECT id, source_run_id, measure, ratio, seed, size, indices_path, params FROM subset "
                          "ORDER BY created_at")
    return [dict(zip(("id", "run", "measure", "ratio", "seed", "size", "path", "params"), r)) for r in rows]


def test_subsample_stores_subsets_and_exports_scores(msda, db_path, isolated_results, tmp_path):
    run_id, targets = _fake_run(db_path)
    export = tmp_path / "scores.csv"
    r = msda("subsample", run_id, "--ratio", "0.1,0.25", "--measure", "cv,random", "--mixes", "4",
             "--export", export, "--format", "csv")
    assert r.code == 0, r.stderr
    subsets = _subsets(db_path)
    assert [(s["measure"], s["ratio"]) for s in subsets] == [
        ("cv", 0.1), ("cv", 0.25), ("random", 0.1), ("random", 0.25)]
    printed = pd.read_csv(io.StringIO(r.stdout))
    assert printed["id"].tolist() == [s["id"] for s in subsets]
    assert printed["size"].tolist() == [s["size"] for s in subsets]
    scores = pd.read_csv(export)
    assert list(scores.columns) == ["index", "label", "mean", "std", "cv"] + [f"loss_{m}" for m in range(4)]
    assert scores["index"].tolist() == list(range(len(targets))) and np.array_equal(scores["label"], targets)
    losses = scores[[f"loss_{m}" for m in range(4)]].to_numpy()
    # float32 losses: a CV near 0 is a difference of nearly equal numbers, so allow an absolute 1e-7 too
    np.testing.assert_allclose(scores["cv"], losses.std(1) / losses.mean(1), rtol=1e-5, atol=1e-7)
    for s in subsets:
        params = json.loads(s["params"])
        assert params["mixes"] == 4 and params["partners"] == 2 and params["select"] == "top"
        assert params["partner_alpha"] == pytest.approx(2 / 9) and params["anchor_share"] == pytest.approx(1 / 3)
        assert params["source_epoch"] == 3 and params["order"] == ("high" if s["measure"] == "cv" else None)
        assert s["run"] == run_id and s["seed"] == 0
        path = Path(s["path"])
        assert path == (isolated_results / "subsets" / f"{s['id']}.npy").resolve()
        idx = np.load(path)
        assert idx.dtype == np.int64 and len(idx) == s["size"] and len(np.unique(idx)) == len(idx)
        counts = np.bincount(targets[idx], minlength=10)
        expected = [int(np.floor(s["ratio"] * n + 0.5)) for n in np.bincount(targets)]
        assert counts.tolist() == expected
        if s["measure"] == "cv":  # the exported scores give the same selection
            np.testing.assert_array_equal(idx, select_indices(scores["cv"].to_numpy(), targets, s["ratio"]))
    cv_idx, rnd_idx = np.load(subsets[0]["path"]), np.load(subsets[2]["path"])
    assert not np.array_equal(cv_idx, rnd_idx)


def test_subsample_random_seed_reproducible_via_cli(msda, db_path):
    run_id, _ = _fake_run(db_path)
    for seed in ("5", "5", "6"):
        assert msda("subsample", run_id, "--ratio", "0.2", "--measure", "random", "--seed", seed).code == 0
    a, b, c = (np.load(s["path"]) for s in _subsets(db_path))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


BAD = [
    (["--ratio", "0"], "--ratio"),
    (["--ratio", "1.5"], "--ratio"),
    (["--ratio", "-0.1"], "--ratio"),
    (["--ratio", "abc"], "--ratio"),
    ([], "--ratio"),
    (["--ratio", "0.1", "--measure", "entropy"], "unknown measure 'entropy'"),
    (["--ratio", "0.1", "--select", "best"], "unknown select 'best'"),
    (["--ratio", "0.1", "--order", "middle"], "unknown order 'middle'"),
    (["--ratio", "0.1", "--mixes", "0"], "--mixes"),
    (["--ratio", "0.1", "--partners", "0"], "--partners"),
    (["--ratio", "0.1", "--anchor-share", "0"], "--anchor-share"),
    (["--ratio", "0.1", "--anchor-share", "1"], "--anchor-share"),
    (["--ratio", "0.1", "--anchor-share", "x"], "--anchor-share"),
    (["--ratio", "0.1", "--partner-alpha", "0"], "--partner-alpha"),
    (["--ratio", "0.1", "--partner-alpha", "-2/9"], "--partner-alpha"),
    (["--ratio", "0.001"], "keeps no sample"),
    (["--ratio", "0.1", "--export", "/nonexistent/dir/s.csv"], "/nonexistent/dir"),
    (["--ratio", "0.1", "--format", "xml"], "unknown format"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_exit_2_and_writes_nothing(msda, db_path, isolated_results, args, message):
    run_id, _ = _fake_run(db_path)
    r = msda("subsample", run_id, *args)
    assert r.code == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert query(db_path, "SELECT count(*) FROM subset") == [(0,)]
    assert not list(isolated_results.glob("subsets/*"))


def test_unknown_run_and_run_without_checkpoint(msda, db_path, tmp_path):
    no_ckpt, _ = _fake_run(db_path, checkpoint=False)
    export = tmp_path / "s.csv"
    for run_id, message in (("deadbeef", "unknown run id 'deadbeef'"), (no_ckpt, "has no checkpoint")):
        r = msda("subsample", run_id, "--ratio", "0.1", "--export", export)
        assert r.code == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert query(db_path, "SELECT count(*) FROM subset") == [(0,)] and not export.exists()


# ----- end to end: train, subsample, train on the subsets, report ------------------------------
def test_end_to_end_train_subsample_train_report(msda, db_path, monkeypatch):
    from msda_cli.engine import build

    assert msda("train", "--recipe", "digits-vanilla", "--epochs", "1", *DIGITS16).code == 0
    (source,) = [r for (r,) in query(db_path, "SELECT id FROM run")]
    r = msda("subsample", source, "--ratio", "0.2", "--measure", "cv,random")
    assert r.code == 0, r.stderr
    subsets = _subsets(db_path)
    assert [s["measure"] for s in subsets] == ["cv", "random"]
    for s in subsets:
        assert s["id"] in r.stdout

    seen = []
    real_restrict = build.restrict

    def spy(dataset, indices):
        out = real_restrict(dataset, indices)
        seen.append((np.asarray(indices).copy(), len(out)))
        return out

    monkeypatch.setattr(build, "restrict", spy)
    batch = 64
    for s in subsets:
        r = msda("train", "--recipe", "digits-vanilla", "--method", "dcutmix", "--epochs", "1", *DIGITS16,
                 "--set", f"batch_size={batch}", "--subset", s["id"])
        assert r.code == 0, r.stderr
    runs = query(db_path, "SELECT id, subset_id, status FROM run WHERE subset_id IS NOT NULL ORDER BY created_at")
    assert [(sid, st) for _, sid, st in runs] == [(s["id"], "finished") for s in subsets]
    for (indices, n), s in zip(seen, subsets):  # the loader saw exactly the stored indices
        assert np.array_equal(indices, np.load(s["path"])) and n == s["size"]
    for (run_id, _, _), s in zip(runs, subsets):  # images trained = the subset (a last batch of one is dropped)
        m = dict(query(db_path, "SELECT name, value FROM metric WHERE run_id=? AND epoch IS NULL AND kind=?",
                       run_id, TRAIN))
        expected = s["size"] - 1 if s["size"] % batch == 1 else s["size"]
        assert round(m[IMAGES_PER_S] * m[TRAIN_TIME]) == expected

    r = msda("report", "--rows", "subset.label", "--cols", "subset.ratio", "--metric", "error",
             "--where", "dataset=digits", "--format", "csv")
    assert r.code == 0, r.stderr
    assert "CV (high)" in r.stdout and "Random" in r.stdout

    from msda_cli.report import TABLES

    if "dcutmix-fig5a" in TABLES:  # the paper table counts its plan's setting only: a relabelled digits run is none
        con = sqlite3.connect(db_path)
        with con:
            con.execute("UPDATE run SET dataset='cifar100' WHERE subset_id IS NOT NULL")
        con.close()
        r = msda("report", "--table", "dcutmix-fig5a", "--format", "csv")
        assert r.code == 0, r.stderr
        assert "CV (high)" not in r.stdout and "Random" not in r.stdout


def test_training_on_a_subset_checks_its_id_data_set_file_and_range(msda, db_path):
    run_id, _ = _fake_run(db_path)
    assert msda("subsample", run_id, "--ratio", "0.2", "--measure", "random").code == 0
    ((subset_id, path),) = query(db_path, "SELECT id, indices_path FROM subset")
    digits = ["--recipe", "digits-vanilla", "--epochs", "1", *DIGITS16]
    cases = [
        (digits, lambda: None, "unknown subset id 'nope'"),
        (["--recipe", "abalone-vanilla", "--set", "dataset=iris", "--epochs", "1"], lambda: None,
         f"subset {subset_id} selects digits samples; the recipe trains on iris"),
        (digits, lambda: np.save(path, np.array([0, 1437], dtype=np.int64)), "beyond the 1437 training samples"),
        (digits, lambda: np.save(path, np.array([0, -1], dtype=np.int64)), "has negative indices"),
        (digits, lambda: np.save(path, np.array([[0, 1]], dtype=np.int64)), "is not a list of integer indices"),
        (digits, lambda: np.save(path, np.array([0.0, 1.5])), "is not a list of integer indices"),
        (digits, lambda: np.save(path, np.array([3, 3], dtype=np.int64)), "repeats training samples"),
        (digits, lambda: Path(path).write_bytes(b"not numpy"), f"subset {subset_id}: cannot read {path}"),
    ]
    for args, spoil, message in cases:
        spoil()
        r = msda("train", *args, "--subset", "nope" if "unknown" in message else subset_id)
        lines = r.stderr.strip().splitlines()
        assert r.code == 2 and len(lines) == 1 and message in lines[0], r.stderr
        assert query(db_path, "SELECT count(*) FROM run") == [(1,)]  # the source run alone


def test_a_subset_row_that_cannot_be_written_leaves_no_indices_file(db_path, isolated_results, monkeypatch):
    from msda_cli.store import Store
    from msda_cli.subsets import NewSubset, create_subsets

    run_id, _ = _fake_run(db_path)
    store = Store(db_path)
    (row,) = create_subsets(store, run_id, [NewSubset("cv", 0.5, 3, np.array([4, 1]), {"select": "top"})])
    assert np.array_equal(np.load(row.indices_path), [4, 1]) and np.load(row.indices_path).dtype == np.int64
    assert (row.size, row.seed, json.loads(row.params)) == (2, 3, {"select": "top"})

    def locked(rows):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "add_subsets", locked)
    with pytest.raises(sqlite3.OperationalError):
        create_subsets(store, run_id, [NewSubset("cv", 0.5, 3, np.array([2]), {}), NewSubset("std", 0.5, 3, [1], {})])
    assert sorted(p.name for p in (isolated_results / "subsets").glob("*.npy")) == [f"{row.id}.npy"]
    assert not list((isolated_results / "subsets").glob(".pending-*"))

    real = Store.add_subsets

    def committed_then_locked(rows):  # the commit went through; reading the rows back failed
        real(store, rows)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "add_subsets", committed_then_locked)
    with pytest.raises(sqlite3.OperationalError):
        create_subsets(store, run_id, [NewSubset("mean", 0.5, 3, np.array([2]), {})])
    files = {p.stem for p in (isolated_results / "subsets").glob("*.npy")}
    assert files == {s.id for s in store.list_subsets()} and len(files) == 2  # the committed row keeps its file
    assert not list((isolated_results / "subsets").glob(".pending-*"))


def test_runs_rm_deletes_the_run_subsets_and_their_index_files(msda, db_path):
    run_id, _ = _fake_run(db_path)
    assert msda("subsample", run_id, "--ratio", "0.2", "--mixes", "2").code == 0
    (path,) = [Path(s["path"]) for s in _subsets(db_path)]
    assert path.is_file()
    assert msda("runs", "rm", run_id, "--yes").code == 0
    assert _subsets(db_path) == [] and not path.exists()


def test_every_anchor_batch_has_partners():
    import torch

    from msda_cli.subsample import anchor_batches

    for n, size in [(5, 2), (1437, 2), (1437, 32), (7, 32), (64, 32), (65, 32)]:
        batches = anchor_batches(n, size, torch.Generator().manual_seed(0))
        sizes = [len(b) for b in batches]
        assert sum(sizes) == n and sorted(np.concatenate(batches).tolist()) == list(range(n))
        assert min(sizes) >= min(size, n)
