"""The prediction loop and the metrics: hand computations, the two loop paths alike, eval mode."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from msda_cli.data import TensorDataset
from msda_cli.errors import MsdaError
from msda_cli.evaluation import (accuracy, average_precision, calibration_metrics, classification_metrics, evaluate,
                                 expected_calibration_error, predict, roc_auc)
from msda_cli.metric_names import ECE, NLL, TOP1, TOP5


# ----- detection areas (OOD) ---------------------------------------------------------------
def test_detection_areas_count_ties_by_hand():
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    positive = np.array([True, True, False, False])
    # AUROC: of the 4 (positive, negative) pairs three are ordered, the tie at 0.5 counts one half.
    assert roc_auc(scores, positive) == pytest.approx(3.5 / 4)
    # AUPR: precision 1 at recall 1/2 (score 0.9), 2/3 at recall 1 (both 0.5 at once).
    assert average_precision(scores, positive) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # A tie between a negative and a positive is one threshold: precision 1/2 there, not 1.
    assert average_precision([0.5, 0.5, 0.1], [False, True, True]) == pytest.approx(0.5 * 1 / 2 + 0.5 * 2 / 3)
    assert average_precision(scores, positive) != pytest.approx(roc_auc(scores, positive))


def test_perfect_and_reversed_detectors():
    labels = np.r_[np.zeros(5), np.ones(3)].astype(bool)
    scores = np.r_[np.linspace(0, 1, 5), np.linspace(2, 3, 3)]
    assert average_precision(scores, labels) == 1.0 and roc_auc(scores, labels) == 1.0
    assert roc_auc(-scores, labels) == 0.0
    assert average_precision(-scores, labels) == pytest.approx(np.mean([1 / 6, 2 / 7, 3 / 8]))
    with pytest.raises(MsdaError):
        roc_auc(scores[:5], labels[:5])
    with pytest.raises(MsdaError):
        average_precision(scores, labels[:5])


# ----- calibration ------------------------------------------------------------------------
def test_ece_and_nll_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.43, 0.57], [0.55, 0.45]])
    labels = torch.tensor([0, 1, 1, 1])
    # confidences 0.9, 0.8, 0.57, 0.55 -> 15 bins of width 1/15: (13/15, 14/15], (11/15, 12/15],
    # (8/15, 9/15] holds both 0.57 and 0.55
    expected = (1 / 4) * abs(1 - 0.9) + (1 / 4) * abs(0 - 0.8) + (2 / 4) * abs(0.5 - 0.56)
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    logits = probs.log()
    m = calibration_metrics(logits, labels)
    assert m[ECE] == pytest.approx(100 * expected)
    assert m[NLL] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.57, 0.45])))


# ----- accuracy ----------------------------------------------------------------------------
def test_top1_is_the_first_maximal_logit_and_top_k_any_of_the_k_largest():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [3.0, 0.0, -1.0]])
    labels = torch.tensor([0, 2, 1])
    assert accuracy(logits, labels) == pytest.approx(100 / 3)  # row 0: the tie goes to class 0
    assert accuracy(logits, torch.tensor([1, 2, 1])) == 0.0
    assert accuracy(logits, labels, 2) == 100.0
    assert accuracy(logits, torch.tensor([2, 0, 2]), 2) == 0.0
    assert accuracy(logits, torch.tensor([2, 0, 2]), 5) == 100.0  # k capped at the 3 classes
    m = classification_metrics(logits, labels)
    assert list(m) == [TOP1, TOP5, ECE, NLL]  # the order `msda eval` prints
    assert m[TOP1] == accuracy(logits, labels) and m[TOP5] == 100.0
    assert m[NLL] == pytest.approx(float(nn.functional.cross_entropy(logits.double(), labels)))


# ----- the prediction loop ----------------------------------------------------------------
def _model_and_loader():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    with torch.no_grad():  # running statistics unlike any batch's, so train mode would show
        model[2].running_mean.fill_(0.3)
        model[2].running_var.fill_(2.0)
    g = torch.Generator().manual_seed(1)
    ds = TensorDataset(torch.rand(23, 1, 4, 4, generator=g), torch.randint(0, 3, (23,), generator=g))
    return model, ds, DataLoader(ds, batch_size=5, shuffle=False)


def test_predict_runs_in_eval_mode_without_gradients_and_restores_the_mode():
    model, ds, loader = _model_and_loader()
    logits, labels = predict(model, loader)
    assert model.training and all(m.training for m in model.modules())
    assert logits.shape == (23, 3) and logits.dtype == torch.float32 and not logits.requires_grad
    assert labels.dtype == torch.int64 and labels.tolist() == [int(ds[i][1]) for i in range(23)]
    model.eval()
    with torch.no_grad():
        direct = model(torch.stack([ds[i][0] for i in range(23)]))
    assert torch.allclose(logits, direct, atol=1e-6)
    assert not model.training  # an eval-mode model stays in eval mode


def test_predict_applies_the_transform_per_batch_on_the_device():
    model, ds, loader = _model_and_loader()
    seen = []

    def transform(x, i):
        seen.append((i, len(x)))
        return torch.zeros_like(x) if i == 1 else x

    logits, _ = predict(model, loader, transform=transform)
    plain, _ = predict(model, loader)
    assert seen == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 3)]
    assert torch.equal(logits[:5], plain[:5]) and torch.equal(logits[10:], plain[10:])
    assert not torch.equal(logits[5:10], plain[5:10])
    assert torch.allclose(logits[5:10], logits[5:6].expand(5, -1))  # every zero image alike


def test_the_accelerate_path_gathers_what_the_plain_path_predicts():
    from accelerate import Accelerator

    model, _, loader = _model_and_loader()
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model.to(accelerator.device)
    plain = predict(model, DataLoader(loader.dataset, batch_size=5, shuffle=False))
    gathered = predict(model, accelerator.prepare(loader), accelerator)
    assert torch.allclose(plain[0], gathered[0], atol=1e-5) and torch.equal(plain[1], gathered[1])
    assert model.training
    assert evaluate(model, accelerator.prepare(DataLoader(loader.dataset, batch_size=7)), accelerator) == \
        pytest.approx(classification_metrics(*plain))
