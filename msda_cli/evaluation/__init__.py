"""Evaluation: one prediction loop and the metrics, for the training loop and for stored runs.

- `predict(model, loader, accelerator=None)`: fp32 logits and labels of a whole loader in eval
  mode (Accelerate-prepared and gathered across processes, or on the model's own device).
- `evaluate(model, loader, accelerator=None)`: the clean test metrics {top1, top5, ece, nll}
  (percent but NLL; ECE with 15 bins), stored by the training loop and `msda eval` as kind eval.
- `metrics`: top-k accuracy, NLL, ECE, and AUROC/AUPR (scikit-learn) for OOD detection.
- `selection`: the fixed seeded subset of evaluated examples and its loader.

Nothing here knows about runs or the store; `msda_cli.runs` opens a stored run to evaluate.
"""

from msda_cli.evaluation.metrics import (ECE_BINS, accuracy, average_precision, calibration_metrics,
                                         classification_metrics, expected_calibration_error,
                                         negative_log_likelihood, roc_auc)
from msda_cli.evaluation.predict import batches, eval_mode, evaluate, model_device, predict
from msda_cli.evaluation.selection import check_subset, select_indices, subset_loader

__all__ = [
    "ECE_BINS", "accuracy", "average_precision", "calibration_metrics", "classification_metrics",
    "expected_calibration_error", "negative_log_likelihood", "roc_auc",
    "batches", "eval_mode", "evaluate", "model_device", "predict",
    "check_subset", "select_indices", "subset_loader",
]
