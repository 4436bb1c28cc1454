"""Out-of-distribution detection by maximum softmax probability (Hendrycks & Gimpel).

Score = −max softmax probability (higher = more likely OOD); OOD samples are the positive
class. AUPR is average precision, Σₖ (Rₖ − Rₖ₋₁)·Pₖ over the distinct score thresholds
(as scikit-learn's `average_precision_score`); AUROC is the trapezoidal area under the ROC
curve over the same thresholds (ties count one half, as `roc_auc_score`). Both in percent.
The in-distribution set is the test set of the model's classes.
"""

from __future__ import annotations

import numpy as np
import torch

from msda_cli.errors import MsdaError


def _threshold_counts(scores, is_positive) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Cumulative true/false positives at each distinct threshold, highest score first."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(is_positive).astype(bool).reshape(-1)
    if scores.shape != pos.shape:
        raise MsdaError(f"{len(scores)} scores for {len(pos)} labels")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise MsdaError("OOD detection needs both in-distribution and out-of-distribution examples")
    order = np.argsort(-scores, kind="mergesort")
    scores, pos = scores[order], pos[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(pos)[last_of_value].astype(np.float64)
    fps = (last_of_value + 1) - tps
    return tps, fps, n_pos, n_neg


def average_precision(scores, is_positive) -> float:
    """Area under the precision-recall curve as a step sum (fraction in [0, 1])."""
    tps, fps, n_pos, _ = _threshold_counts(scores, is_positive)
    recall_gain = np.diff(np.r_[0.0, tps]) / n_pos
    return float(np.sum(recall_gain * tps / (tps + fps)))


def roc_auc(scores, is_positive) -> float:
    """Area under the ROC curve by the trapezoid rule (fraction in [0, 1])."""
    tps, fps, n_pos, n_neg = _threshold_counts(scores, is_positive)
    tpr, fpr = np.r_[0.0, tps / n_pos], np.r_[0.0, fps / n_neg]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def msp_ood_score(logits: torch.Tensor) -> torch.Tensor:
    """−max softmax probability: larger means more likely out of distribution."""
    return -logits.float().softmax(dim=1).max(dim=1).values


def evaluate_ood(model, in_dataset, ood_dataset, ood_name: str, n_examples: int | None = None,
                 batch_size: int = 256, seed: int = 0, progress: bool = True, workers: int = 0) -> list[tuple]:
    """`ood_aupr` and `ood_auroc` (percent); `n_examples` caps each of the two sets."""
    from msda_cli.robust.batching import predict_logits, subset_loader

    x_in, x_out = in_dataset[0][0], ood_dataset[0][0]
    if tuple(x_in.shape) != tuple(x_out.shape):
        raise MsdaError(f"OOD set {ood_name!r} has images of shape {tuple(x_out.shape)}, "
                        f"the model takes {tuple(x_in.shape)}")
    in_loader, n_in = subset_loader(in_dataset, n_examples, seed, batch_size, workers)
    out_loader, n_out = subset_loader(ood_dataset, n_examples, seed, batch_size, workers)
    logits_in, _ = predict_logits(model, in_loader, "OOD: in-distribution", progress)
    logits_out, _ = predict_logits(model, out_loader, f"OOD: {ood_name}", progress)
    scores = torch.cat([msp_ood_score(logits_in), msp_ood_score(logits_out)]).numpy()
    is_ood = np.r_[np.zeros(n_in, dtype=bool), np.ones(n_out, dtype=bool)]
    params = {"ood_set": ood_name, "n_in": n_in, "n_out": n_out}
    return [
        ("ood_aupr", 100.0 * average_precision(scores, is_ood), None, dict(params)),
        ("ood_auroc", 100.0 * roc_auc(scores, is_ood), None, dict(params)),
    ]
