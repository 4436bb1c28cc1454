"""Metrics of predictions, from logits and labels (or detection scores), computed on the CPU.

- top-k accuracy in percent; top-1 is the first maximal logit (`argmax`), top-k any of the k
  largest (k capped at the number of classes).
- NLL: mean −log softmax probability of the true class, in nats (float64).
- ECE = Σ_b |B_b|/N · |acc(B_b) − conf(B_b)| with 15 equal-width bins, confidence = max softmax
  probability, bin b (1-based) holding (b−1)/15 < conf ≤ b/15 (Guo et al. 2017; Naeini et al.
  2015); a fraction here, in percent in `calibration_metrics`.
- AUROC and AUPR (average precision) of a detector, scikit-learn's `roc_auc_score` and
  `average_precision_score` (ties count one half in AUROC; AUPR steps over the distinct scores),
  as fractions; the positive class is the one to detect.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from msda_cli.checks import check_int
from msda_cli.errors import MsdaError
from msda_cli.metric_names import ECE, NLL, TOP1, TOP5

ECE_BINS = 15


def accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Top-k accuracy in percent."""
    logits, labels = logits.detach().float().cpu(), torch.as_tensor(labels).long().cpu()
    if k == 1:
        hit = logits.argmax(dim=1).eq(labels)
    else:
        hit = logits.topk(min(k, logits.shape[1]), dim=1).indices.eq(labels[:, None]).any(dim=1)
    return 100.0 * hit.float().mean().item()


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """ECE as a fraction in [0, 1] from class probabilities [N, C]."""
    n_bins = check_int("ECE n_bins", n_bins, min=1)
    probs, labels = probs.detach().double().cpu(), torch.as_tensor(labels).long().cpu()
    if len(probs) == 0 or len(probs) != len(labels):
        raise MsdaError(f"ECE needs one label per prediction ({len(probs)} predictions, {len(labels)} labels)")
    conf, pred = probs.max(dim=1)
    correct = pred.eq(labels).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    bin_idx = (torch.bucketize(conf, edges, right=False) - 1).clamp(0, n_bins - 1)  # (lo, hi] bins
    count = torch.bincount(bin_idx, minlength=n_bins).double()
    acc_sum = torch.bincount(bin_idx, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(bin_idx, weights=conf, minlength=n_bins)
    return float((acc_sum - conf_sum).abs().sum() / count.sum())


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean −log softmax probability of the true class."""
    return float(F.cross_entropy(logits.detach().double().cpu(), torch.as_tensor(labels).long().cpu()))


def calibration_metrics(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> dict[str, float]:
    """{ece: percent, nll: nats}."""
    return {
        ECE: 100.0 * expected_calibration_error(logits.detach().double().softmax(dim=1), labels, n_bins),
        NLL: negative_log_likelihood(logits, labels),
    }


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The clean test metrics {top1, top5, ece, nll} (percent but NLL)."""
    return {TOP1: accuracy(logits, labels, 1), TOP5: accuracy(logits, labels, 5),
            **calibration_metrics(logits, labels)}


def _detection(scores, is_positive) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positive = np.asarray(is_positive).astype(bool).reshape(-1)
    if scores.shape != positive.shape:
        raise MsdaError(f"{len(scores)} scores for {len(positive)} labels")
    if positive.all() or not positive.any():
        raise MsdaError("detection areas need positive (out-of-distribution) and negative (in-distribution) examples")
    return scores, positive


def average_precision(scores, is_positive) -> float:
    """Area under the precision-recall curve (average precision), a fraction in [0, 1]."""
    from sklearn.metrics import average_precision_score

    scores, positive = _detection(scores, is_positive)
    return float(average_precision_score(positive, scores))


def roc_auc(scores, is_positive) -> float:
    """Area under the ROC curve, a fraction in [0, 1]."""
    from sklearn.metrics import roc_auc_score

    scores, positive = _detection(scores, is_positive)
    return float(roc_auc_score(positive, scores))
