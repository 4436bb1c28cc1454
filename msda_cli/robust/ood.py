"""Out-of-distribution detection by maximum softmax probability (Hendrycks & Gimpel).

Score = −max softmax probability (higher = more likely OOD); OOD samples are the positive
class. AUPR is average precision and AUROC the area under the ROC curve, both scikit-learn's
(`msda_cli.evaluation.metrics`), in percent. Two protocols (`msda_cli.robust.imagenet_o`):
"all-classes" takes the whole test set of the model's classes and all logits; "imagenet-o-200"
(Hendrycks et al.'s, the default for ImageNet-O) takes the test images of the 200 ImageNet-O
classes and restricts the logits to those classes before the softmax. The protocol is stored
with each number.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Subset

from msda_cli.checks import check_choice
from msda_cli.errors import MsdaError
from msda_cli.evaluation import average_precision, predict, roc_auc, subset_loader
from msda_cli.metric_names import OOD_AUPR, OOD_AUROC
from msda_cli.robust.imagenet_o import HENDRYCKS, IMAGENET_O_WNIDS, OOD_PROTOCOLS, default_protocol
from msda_cli.robust.natural import match_classes


def msp_ood_score(logits: torch.Tensor) -> torch.Tensor:
    """−max softmax probability: larger means more likely out of distribution."""
    return -logits.float().softmax(dim=1).max(dim=1).values


def imagenet_o_classes(model_classes) -> torch.Tensor:
    """The model's indices of the 200 ImageNet-O classes (in the list's order), or MsdaError."""
    mapping = match_classes(list(IMAGENET_O_WNIDS), list(model_classes or []))
    if len(mapping) < len(IMAGENET_O_WNIDS):
        missing = [w for i, w in enumerate(IMAGENET_O_WNIDS) if i not in mapping]
        raise MsdaError(f"the {HENDRYCKS} protocol needs a model of the ImageNet classes; {len(missing)} of the 200 "
                        f"ImageNet-O classes are not among its classes ({', '.join(missing[:3])}, ...); "
                        "use --ood-protocol all-classes")
    return torch.tensor([mapping[i] for i in range(len(IMAGENET_O_WNIDS))])


def in_distribution_of(in_dataset, columns: torch.Tensor) -> Subset:
    """The test examples labelled with one of the model classes `columns`."""
    targets = getattr(in_dataset, "targets", None)
    if targets is None:
        raise MsdaError(f"the {HENDRYCKS} protocol needs the test set's labels (an ImageNet-style data set)")
    keep = torch.isin(torch.as_tensor(targets), columns).nonzero().squeeze(1)
    if len(keep) == 0:
        raise MsdaError("the test set has no image of the 200 ImageNet-O classes")
    return Subset(in_dataset, keep.tolist())


def evaluate_ood(model, in_dataset, ood_dataset, ood_name: str, protocol: str | None = None,
                 model_classes=None, n_examples: int | None = None, batch_size: int = 256, seed: int = 0,
                 progress: bool = True, workers: int = 0) -> list[tuple]:
    """`ood_aupr` and `ood_auroc` (percent); `n_examples` caps each of the two sets. `protocol`: None
    (ImageNet-O's for a set named so, else all-classes), "imagenet-o-200" or "all-classes"; the
    ImageNet-O protocol needs `model_classes` (the model's class names, WordNet ids)."""
    protocol = check_choice("--ood-protocol", protocol or default_protocol(ood_name), OOD_PROTOCOLS)
    x_in, x_out = in_dataset[0][0], ood_dataset[0][0]
    if tuple(x_in.shape) != tuple(x_out.shape):
        raise MsdaError(f"OOD set {ood_name!r} has images of shape {tuple(x_out.shape)}, "
                        f"the model takes {tuple(x_in.shape)}")
    columns = imagenet_o_classes(model_classes) if protocol == HENDRYCKS else None
    if columns is not None:
        in_dataset = in_distribution_of(in_dataset, columns)
    in_loader, n_in = subset_loader(in_dataset, n_examples, seed, batch_size, workers)
    out_loader, n_out = subset_loader(ood_dataset, n_examples, seed, batch_size, workers)
    logits_in, _ = predict(model, in_loader, description="OOD: in-distribution", progress=progress)
    logits_out, _ = predict(model, out_loader, description=f"OOD: {ood_name}", progress=progress)
    if columns is not None:  # the softmax over the 200 classes only
        logits_in, logits_out = logits_in[:, columns], logits_out[:, columns]
    scores = torch.cat([msp_ood_score(logits_in), msp_ood_score(logits_out)]).numpy()
    is_ood = np.r_[np.zeros(n_in, dtype=bool), np.ones(n_out, dtype=bool)]
    params = {"ood_set": ood_name, "protocol": protocol, "n_in": n_in, "n_out": n_out}
    return [
        (OOD_AUPR, 100.0 * average_precision(scores, is_ood), None, dict(params)),
        (OOD_AUROC, 100.0 * roc_auc(scores, is_ood), None, dict(params)),
    ]
