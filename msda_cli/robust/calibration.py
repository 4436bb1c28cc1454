"""Calibration: expected calibration error with 15 equal-width bins, and NLL.

ECE = Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|, confidence = max softmax probability, bin b
(1-based) holding (b−1)/15 < conf ≤ b/15 (Guo et al. 2017; Naeini et al. 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from msda_cli.errors import MsdaError

ECE_BINS = 15


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """ECE as a fraction in [0, 1] from class probabilities [N, C]."""
    if n_bins < 1:
        raise MsdaError(f"ECE needs at least one bin (got {n_bins})")
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
    """{"ece": percent, "nll": nats}."""
    return {
        "ece": 100.0 * expected_calibration_error(logits.detach().double().softmax(dim=1), labels, n_bins),
        "nll": negative_log_likelihood(logits, labels),
    }
