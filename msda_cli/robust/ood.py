"""Out-of-distribution detection by maximum softmax probability (Hendrycks & Gimpel).

Score = −max softmax probability (higher = more likely OOD); OOD samples are the positive
class. AUPR is average precision and AUROC the area under the ROC curve, both scikit-learn's
(`msda_cli.evaluation.metrics`), in percent. The in-distribution set is the test set of the
model's classes.
"""

from __future__ import annotations

import numpy as np
import torch

from msda_cli.errors import MsdaError
from msda_cli.evaluation import average_precision, predict, roc_auc, subset_loader
from msda_cli.metric_names import OOD_AUPR, OOD_AUROC


def msp_ood_score(logits: torch.Tensor) -> torch.Tensor:
    """−max softmax probability: larger means more likely out of distribution."""
    return -logits.float().softmax(dim=1).max(dim=1).values


def evaluate_ood(model, in_dataset, ood_dataset, ood_name: str, n_examples: int | None = None,
                 batch_size: int = 256, seed: int = 0, progress: bool = True, workers: int = 0) -> list[tuple]:
    """`ood_aupr` and `ood_auroc` (percent); `n_examples` caps each of the two sets."""
    x_in, x_out = in_dataset[0][0], ood_dataset[0][0]
    if tuple(x_in.shape) != tuple(x_out.shape):
        raise MsdaError(f"OOD set {ood_name!r} has images of shape {tuple(x_out.shape)}, "
                        f"the model takes {tuple(x_in.shape)}")
    in_loader, n_in = subset_loader(in_dataset, n_examples, seed, batch_size, workers)
    out_loader, n_out = subset_loader(ood_dataset, n_examples, seed, batch_size, workers)
    logits_in, _ = predict(model, in_loader, description="OOD: in-distribution", progress=progress)
    logits_out, _ = predict(model, out_loader, description=f"OOD: {ood_name}", progress=progress)
    scores = torch.cat([msp_ood_score(logits_in), msp_ood_score(logits_out)]).numpy()
    is_ood = np.r_[np.zeros(n_in, dtype=bool), np.ones(n_out, dtype=bool)]
    params = {"ood_set": ood_name, "n_in": n_in, "n_out": n_out}
    return [
        (OOD_AUPR, 100.0 * average_precision(scores, is_ood), None, dict(params)),
        (OOD_AUROC, 100.0 * roc_auc(scores, is_ood), None, dict(params)),
    ]
