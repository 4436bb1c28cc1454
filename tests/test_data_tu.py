"""TUDatasets from TU-format folders written here, their 10-fold split, GIN, Mixup and MixupE at its graph readout,
and MixupE Table 6 end to end (train with vanilla, mixup and mixupe; the report averages over folds)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil

import pytest
import torch

from msda_cli.config import read_recipe, validate
from msda_cli.data import build_dataset
from msda_cli.data.tu import TU_SETS, stratified_folds
from msda_cli.engine import build
from msda_cli.errors import MsdaError
from msda_cli.mixing import build_mixer
from msda_cli.mixing.hidden import mixed_forward, representation_layer
from msda_cli.models import build_model
from conftest import query
from tufiles import write_tu, write_tu_set

GRAPH_RECIPES = [f"{key}-{method}" for key in TU_SETS for method in ("vanilla", "mixup", "mixupe")]


@pytest.fixture(scope="module")
def tu_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tu")
    for key in TU_SETS:
        write_tu_set(key, root)
    return root


def test_mutag_reads_graphs_one_hot_node_labels_and_labels(tu_dir):
    both = [build_dataset("mutag", root=tu_dir, train=t, fold=0) for t in (True, False)]
    assert sum(len(d) for d in both) == 20 and both[0].info.num_classes == 2 and both[0].info.in_chans == 3
    graphs = {}
    for d in both:
        for i in range(len(d)):
            g, y = d[i]
            graphs[(g.num_nodes, g.edge_index.shape[1], tuple(g.x.argmax(1).tolist()))] = y
    # graph g (tufiles): 3 + g nodes in a ring (+ a chord when odd), node k labelled (g + k) % 3, label -1/1 -> 0/1
    for g in range(20):
        n = 3 + g
        edges = 2 * (n + (1 if g % 2 and n > 3 else 0))
        assert graphs[(n, edges, tuple((g + k) % 3 for k in range(n)))] == g % 2
    g, _ = both[0][0]
    assert torch.equal(g.x.sum(1), torch.ones(g.num_nodes)) and g.x.dtype == torch.float32


def test_imdb_sets_take_one_hot_degrees(tu_dir):
    d = build_dataset("imdb-multi", root=tu_dir, train=True, fold=0)
    assert d.info.num_classes == 3 and d.info.in_chans == 4  # degrees 2 and 3 (a chord's ends): 0..3
    for i in range(len(d)):
        g, _ = d[i]
        degree = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
        assert torch.equal(g.x.argmax(1), degree) and torch.equal(g.x.sum(1), torch.ones(g.num_nodes))


def test_pyg_tudataset_reads_the_same_folder(tu_dir, tmp_path):
    pytest.importorskip("torch_geometric")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.datasets import TUDataset
    shutil.copytree(tu_dir / "MUTAG", tmp_path / "MUTAG")  # TUDataset writes its processed cache beside raw/
    ref = TUDataset(str(tmp_path), "MUTAG")
    ours = build_dataset("mutag", root=tu_dir, train=True, fold=0)
    assert len(ref) == 20 and ref.num_node_features == ours.info.in_chans
    seen = {(int(g.num_nodes), tuple(g.x.argmax(1).tolist()), int(g.y)) for g in ref}
    assert all((g.num_nodes, tuple(g.x.argmax(1).tolist()), y) in seen for g, y in (ours[i] for i in range(len(ours))))


def test_folds_are_stratified_disjoint_and_cover_every_graph(tu_dir):
    y = torch.tensor([0] * 23 + [1] * 7 + [2] * 11)
    fold = stratified_folds(y, 10, seed=0)
    assert torch.equal(fold, stratified_folds(y, 10, seed=0)) and not torch.equal(fold, stratified_folds(y, 10, 1))
    for c, n in ((0, 23), (1, 7), (2, 11)):
        per_fold = torch.bincount(fold[y == c], minlength=10)
        assert per_fold.sum() == n and per_fold.max() - per_fold.min() <= 1
    sizes = torch.bincount(fold, minlength=10)
    assert sizes.max() - sizes.min() <= 1
    seen = []
    for k in range(10):
        train = build_dataset("mutag", root=tu_dir, train=True, fold=k)
        test = build_dataset("mutag", root=tu_dir, train=False, fold=k)
        assert len(train) + len(test) == 20 and len(test) == 2 and sorted(test.targets.tolist()) == [0, 1]
        seen += [(g.num_nodes, tuple(g.x.argmax(1).tolist()), yy) for g, yy in (test[i] for i in range(len(test)))]
    assert len(set(seen)) == 20  # every graph tested exactly once over the ten folds


def test_bad_folders_and_options_are_one_line_errors(tu_dir, tmp_path):
    with pytest.raises(MsdaError, match="NCI1: data not found; expected .*NCI1_A.txt"):
        build_dataset("nci1", root=tmp_path)
    write_tu(tmp_path, "NCI1", raw=False)  # the unzipped archive's layout is read too
    assert len(build_dataset("nci1", root=tmp_path, train=False)) == 2
    bad = tmp_path / "bad"
    write_tu(bad, "NCI1")
    (bad / "NCI1" / "raw" / "NCI1_A.txt").write_text("1, x\n")
    with pytest.raises(MsdaError, match="NCI1: cannot read the TU files"):
        build_dataset("nci1", root=bad)
    with pytest.raises(MsdaError, match="data.options.fold"):
        build_dataset("mutag", root=tu_dir, fold=10)


def test_a_missing_tu_folder_stops_msda_train_in_one_line_with_nothing_written(msda, tmp_path, db_path,
                                                                              isolated_results):
    from test_bad_input import _nothing_written, _one_line

    r = msda("train", "--recipe", "proteins-mixupe", "--data-dir", tmp_path, "--epochs", "1")
    _one_line(r, "PROTEINS: data not found", "PROTEINS_A.txt")
    _nothing_written(db_path, isolated_results)
    write_tu_set("proteins", tmp_path)
    r = msda("train", "--recipe", "proteins-mixupe", "--method", "cutmix", "--data-dir", tmp_path, "--epochs", "1")
    _one_line(r, "method 'cutmix' mixes input tensors; the samples of proteins are graphs")
    _nothing_written(db_path, isolated_results)


def _batch(ds, n):
    return ds.info.collate([ds[i % len(ds)] for i in range(n)])


def test_gin_mixes_its_readout_and_mixupe_batches_mixed_with_clean(tu_dir):
    torch.manual_seed(0)
    ds = build_dataset("mutag", root=tu_dir, train=True)
    graphs, y = _batch(ds, 6)
    model = build_model("gin", num_classes=2, in_chans=ds.info.in_chans).eval()
    layer = representation_layer(model)
    assert layer is model.readout
    h = {}
    handle = layer.register_forward_hook(lambda m, i, o: h.setdefault("h", o))
    plain = model(graphs)
    handle.remove()
    assert h["h"].shape == (6, 3 + 4 * 64)  # the input's and every GIN layer's sum pooling, concatenated
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    params = {"lam": torch.tensor([0.3], dtype=torch.float64), "index": torch.stack([torch.arange(6), perm])}
    mixed, clean = mixed_forward(model, layer, graphs, params, clean=True)
    assert torch.allclose(clean, plain, atol=1e-5)
    assert torch.allclose(mixed, model.head(0.3 * h["h"] + 0.7 * h["h"][perm]), atol=1e-4)
    for method in ("vanilla", "mixup", "mixupe"):
        model.zero_grad(set_to_none=True)
        out = build_mixer(method).loss(model.train(), graphs, y, 2, generator=torch.Generator().manual_seed(0))
        assert out.logits.shape == (6, 2) and math.isfinite(float(out.loss.detach()))
        out.loss.backward()
        assert not [n for n, p in model.named_parameters() if p.grad is None], method  # no dead modules
    with pytest.raises(MsdaError, match="mixes tensors, not DataBatch inputs"):
        build_mixer("cutmix").loss(model, graphs, y, 2)


def test_every_graph_recipe_builds_its_data_and_model_and_trains_two_steps(tu_dir):
    torch.manual_seed(0)
    for name in GRAPH_RECIPES:
        cfg = validate(read_recipe(name), source=name)
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"root": str(tu_dir)})})
        assert (cfg.epochs, cfg.batch_size, cfg.optim.lr, cfg.schedule.gamma) == (350, 128, 0.01, 0.5)
        assert cfg.schedule.milestones == [50, 100, 150, 200, 250, 300] and cfg.data.options == {"fold": 0}
        ds = build.build_data(cfg, train=True)
        model = build.build_network(cfg, ds.info)
        mixer, optimizer = build.build_method(cfg), build.build_optimizer(cfg, model)
        graphs, y = _batch(ds, 7)
        before = [p.detach().clone() for p in model.parameters()]
        for _ in range(2):
            out = mixer.loss(model.train(), graphs, y, ds.info.num_classes, generator=torch.Generator())
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            assert math.isfinite(float(out.loss.detach())) and out.logits.shape == (7, ds.info.num_classes), name
        assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters())), name


def test_vanilla_mixup_and_mixupe_train_and_mixupe_6_averages_over_folds(msda, tu_dir, db_path):
    small = ("--epochs", "2", "--set", "batch_size=8")
    for method in ("vanilla", "mixup", "mixupe"):
        r = msda("train", "--recipe", f"mutag-{method}", "--data-dir", tu_dir, *small)
        assert r.code == 0, r.stderr
    r = msda("train", "--recipe", "mutag-vanilla", "--data-dir", tu_dir, *small, "--set", "data.options.fold=1")
    assert r.code == 0, r.stderr
    r = msda("report", "--table", "mixupe-6", "--paper", "--where", "epochs=2", "--where", "batch_size=8",
             "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    counted = {(row["Dataset"], row["column"]): row["n"] for row in rows if row["n"] not in ("", "0")}
    assert counted == {("MUTAG", "ERM"): "2", ("MUTAG", "Mixup"): "1", ("MUTAG", "MixupE"): "1"}
    r = msda("report", "--table", "mixupe-6", "--where", "epochs=2", "--where", "batch_size=8", "--format", "json")
    caption = json.loads(r.stdout)["caption"]
    assert "over seeds and folds (ddof = 1)" in caption and "n = 1–2 runs per cell" in caption, caption
    (run_id, fold), = query(db_path, "SELECT id, json_extract(config, '$.data.options.fold') FROM run "
                                     "WHERE method = 'mixupe'")
    assert fold == 0
    r = msda("eval", run_id)  # the stored best epoch's model, on its test fold
    assert r.code == 0, r.stderr
    assert query(db_path, "SELECT count(*) FROM metric WHERE run_id = ? AND kind = 'eval' AND name = 'top1'",
                 run_id) == [(2,)]


def test_mixupe_6_renders_with_the_published_values(msda, tu_dir):
    r = msda("report", "--table", "mixupe-6", "--paper")
    assert r.code == 0, r.stderr
    for value in ("10.15", "10.67", "10.06", "17.79", "18.59", "17.74", "38.37", "34.87", "35.50", "25.43", "24.44",
                  "23.72", "25.60", "25.30", "25.20", "50.33", "49.27", "48.53"):
        assert value in r.stdout


def test_reproduce_names_a_missing_graph_set_once_not_once_per_fold(msda, tmp_path):
    (tmp_path / "empty").mkdir()
    r = msda("reproduce", "--table", "mixupe-6", "--rows", "MUTAG", "--seeds", "0", "--dry-run",
             "--data-dir", tmp_path / "empty")
    assert r.code == 2 and r.stderr.count("MUTAG: data not found") == 1, r.stderr
