"""ImageNet-O: the shipped 200-class list, Hendrycks et al.'s protocol on an ImageNet-style folder tree, and
DCutMix Table 4 planning and filtering that protocol."""

import dataclasses
import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn

from msda_cli.data import build_dataset
from msda_cli.errors import MsdaError
from msda_cli.metric_names import OOD_ALL_CLASSES, OOD_AUPR, OOD_AUROC, OOD_HENDRYCKS
from msda_cli.models import Normalized
from msda_cli.robust import evaluate_ood, image_folder
from msda_cli.robust.imagenet_o import IMAGENET_O_WNIDS, default_protocol, is_imagenet_o

OTHERS = ("n01440764", "n01484850", "n01491361")  # tench, great white shark, tiger shark: not ImageNet-O classes
PER_CLASS, SIZE = 2, 16


def _timm_list(name: str) -> list[str]:
    timm_data = pytest.importorskip("timm.data")
    with open(os.path.join(os.path.dirname(timm_data.__file__), "_info", name)) as f:
        return f.read().split()


def test_the_list_is_200_distinct_imagenet_1k_wnids_and_not_imagenet_a():
    assert len(IMAGENET_O_WNIDS) == 200 and len(set(IMAGENET_O_WNIDS)) == 200
    assert all(re.fullmatch(r"n\d{8}", w) for w in IMAGENET_O_WNIDS)
    assert list(IMAGENET_O_WNIDS) == sorted(IMAGENET_O_WNIDS)
    imagenet_1k = _timm_list("imagenet_synsets.txt")
    assert len(imagenet_1k) == 1000 and set(IMAGENET_O_WNIDS) <= set(imagenet_1k)
    imagenet_a = set(_timm_list("imagenet_a_synsets.txt"))
    assert len(imagenet_a) == 200 and len(imagenet_a & set(IMAGENET_O_WNIDS)) == 59  # two lists that share 59
    assert "n01443537" not in imagenet_a and "n01498041" not in IMAGENET_O_WNIDS  # goldfish; stingray (ImageNet-A)
    assert not set(OTHERS) & set(IMAGENET_O_WNIDS)


def test_imagenet_o_is_named_so_and_takes_hendrycks_protocol_by_default():
    assert all(is_imagenet_o(n) for n in ("imagenet-o", "ImageNet_O", "imagenet o", "data/imagenet-o"))
    assert not any(is_imagenet_o(n) for n in ("imagenet", "imagenet-a", "svhn"))
    assert (default_protocol("imagenet-o"), default_protocol("svhn")) == (OOD_HENDRYCKS, OOD_ALL_CLASSES)


def _jpeg(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="JPEG")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """ImageNet's val/<wnid>/*.JPEG for the 200 ImageNet-O classes and 3 others, and imagenet-o/<wnid>/*.jpg."""
    root = tmp_path_factory.mktemp("imagenet-o-tree")
    for k, wnid in enumerate(sorted((*IMAGENET_O_WNIDS, *OTHERS))):
        for i in range(PER_CLASS):
            _jpeg(root / "imagenet" / "val" / wnid / f"ILSVRC2012_val_{k:05d}{i}.JPEG", seed=10 * k + i)
    for k, wnid in enumerate(IMAGENET_O_WNIDS[:6]):
        for i in range(3):
            _jpeg(root / "imagenet-o" / wnid / f"{wnid}_{i}.jpg", seed=10_000 + 10 * k + i)
    return root


def _model(classes):
    """A linear model over 3x16x16 inputs whose three non-ImageNet-O classes take most of the probability."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, len(classes)))
    with torch.no_grad():
        for wnid in OTHERS:
            net[1].bias[classes.index(wnid)] += 3.0
    return Normalized(net, (0.5,) * 3, (0.25,) * 3).eval()


def _scores(model, dataset, columns=None):
    """−max softmax of every image, one at a time (the oracle's own loop)."""
    out = []
    with torch.no_grad():
        for i in range(len(dataset)):
            logits = model(dataset[i][0][None])[0]
            logits = logits if columns is None else logits[columns]
            out.append(-logits.softmax(dim=0).max().item())
    return np.array(out)


def test_hendrycks_protocol_restricts_to_the_200_classes_and_matches_sklearn(tree):
    val = build_dataset("imagenet", root=tree / "imagenet", train=False, image_size=SIZE)
    ood = image_folder(tree / "imagenet-o", SIZE)
    classes = val.info.classes
    assert len(classes) == 203 and len(val) == 203 * PER_CLASS
    model = _model(classes)
    rows = evaluate_ood(model, val, ood, "imagenet-o", model_classes=classes, batch_size=64, progress=False)
    ((aupr_name, aupr, _, params), (auroc_name, auroc, _, _)) = rows
    assert (aupr_name, auroc_name) == (OOD_AUPR, OOD_AUROC)
    assert params == {"ood_set": "imagenet-o", "protocol": OOD_HENDRYCKS, "n_in": 200 * PER_CLASS, "n_out": 18}

    columns = [classes.index(w) for w in IMAGENET_O_WNIDS]
    inside = [i for i in range(len(val)) if classes[int(val.targets[i])] in IMAGENET_O_WNIDS]
    assert len(inside) == 200 * PER_CLASS
    scores = np.r_[_scores(model, torch.utils.data.Subset(val, inside), columns), _scores(model, ood, columns)]
    is_ood = np.r_[np.zeros(len(inside)), np.ones(len(ood))]
    assert aupr == pytest.approx(100 * average_precision_score(is_ood, scores), abs=1e-6)
    assert auroc == pytest.approx(100 * roc_auc_score(is_ood, scores), abs=1e-6)

    (_, all_aupr, _, all_params), _ = evaluate_ood(model, val, ood, "imagenet-o", protocol=OOD_ALL_CLASSES,
                                                   model_classes=classes, batch_size=64, progress=False)
    assert all_params == {"ood_set": "imagenet-o", "protocol": OOD_ALL_CLASSES, "n_in": 203 * PER_CLASS, "n_out": 18}
    all_scores = np.r_[_scores(model, val), _scores(model, ood)]
    all_is_ood = np.r_[np.zeros(len(val)), np.ones(len(ood))]
    assert all_aupr == pytest.approx(100 * average_precision_score(all_is_ood, all_scores), abs=1e-6)
    assert abs(all_aupr - aupr) > 0.1  # the restriction and the subset matter for this model


def test_hendrycks_protocol_needs_the_200_classes(tree):
    ood = image_folder(tree / "imagenet-o", SIZE)
    classes = sorted((*IMAGENET_O_WNIDS[:150], *OTHERS))
    with pytest.raises(MsdaError, match="50 of the 200 ImageNet-O classes.*--ood-protocol all-classes"):
        evaluate_ood(_model(classes), ood, ood, "imagenet-o", model_classes=classes, progress=False)


def test_dcutmix_table_4_plans_and_filters_hendrycks_protocol(tmp_path):
    from msda_cli.report import TABLES, build_report
    from msda_cli.report.plan import resolve
    from msda_cli.store import Store
    from test_report_tables import Filler

    spec = TABLES["dcutmix-4"]
    cell = spec.cell(next(h for h in spec.rows if h.label == "DCutMix"), spec.cols[0])
    (follow_up,) = cell.plan.followups
    assert follow_up.settings == {"ood": "imagenet-o", "ood_protocol": OOD_HENDRYCKS}
    assert "--ood-protocol imagenet-o-200" in follow_up.describe()
    res = resolve(cell.plan)
    f = Filler()
    f.run(res.config, cell.metric, 16.5, 0, "t")
    f.run(res.config, dataclasses.replace(cell.metric, params={**cell.metric.params, "protocol": OOD_ALL_CLASSES}),
          40.0, 1, "t")
    store = Store(tmp_path / "msda.db")
    f.write(store)
    got = build_report(store.final_metrics_frame(), table="dcutmix-4").cell("DCutMix", "ImageNet-O AUPR (%)")
    assert (got.n, got.mean) == (1, 16.5)


@pytest.mark.parametrize("args, message", [
    (["--ood", "svhn", "--ood-protocol", "bogus"], "unknown --ood-protocol 'bogus'; choose from: imagenet-o-200"),
    (["--deform", "--ood-protocol", "all-classes"], "--ood-protocol goes with --ood"),
])
def test_bad_ood_protocol_is_one_line_exit_2(msda, db_path, args, message):
    from msda_cli.store import Store

    run = Store(db_path).create_run(dataset="digits", arch="mlp", method="vanilla", config="{}")
    r = msda("robust", run.id, *args)
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr


def test_msda_robust_takes_hendrycks_protocol_for_an_imagenet_o_folder(msda, tmp_path, tree, monkeypatch):
    """A digits model lacks the 200 classes: the folder's name chose Hendrycks' protocol, which refuses it before
    any measure; --ood-protocol all-classes measures it and stores the protocol."""
    from conftest import query, train_shared_runs

    results = tmp_path / "r"
    results.mkdir()
    db = train_shared_runs(results, ["--recipe", "digits-mixup", "--set", "data.options.image_size=16",
                                     "--set", "batch_size=128", "--epochs", "1"])
    monkeypatch.setenv("MSDA_RESULTS", str(results))
    monkeypatch.setenv("MSDA_DB", str(db))
    (run_id,), = query(db, "SELECT id FROM run")
    folder = tree / "imagenet-o"
    r = msda("robust", run_id, "--ood", folder, "--deform")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "--ood-protocol all-classes" in r.stderr
    assert query(db, "SELECT count(*) FROM metric WHERE kind='robust'") == [(0,)]
    assert msda("robust", run_id, "--ood", folder, "--ood-protocol", "all-classes").code == 0
    params = {p for (p,) in query(db, "SELECT params FROM metric WHERE name=?", OOD_AUPR)}
    assert [json.loads(p)["protocol"] for p in params] == [OOD_ALL_CLASSES]
