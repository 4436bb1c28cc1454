"""Robustness measures of a trained model: attacks, OOD detection, natural adversarial
examples, deformations, common corruptions.

Every `evaluate_*` function takes already-loaded objects — a `models.Normalized` model
(inputs in [0, 1]; it is put in eval mode for the call and runs in fp32 on its own device)
and data sets yielding (x in [0, 1], y) — and returns metric rows
`(name, value, None, params)` ready for `Store.add_metrics(run_id, "robust", rows)`.
`n_examples=N` evaluates the first N of a permutation seeded with `seed` (the same subset
for every model); the count actually used is always recorded. ε and step sizes are in
0–255 pixel units (`eps=8` means 8/255). Progress bars (rich) over batches unless
`progress=False`. Bad settings raise `MsdaError` with one clear line (`attacks.check_attack`
is the one check of the attack settings).

Metric rows (values in percent), names and params:

==========================  ===================================================================
`clean_top1`                {n_examples}  (same subset as the attack row next to it)
`fgsm`                      {attack: "fgsm", eps, n_examples, mode: "white-box"}
`pgd`                       {attack: "pgd", eps, step_size, steps, restarts, n_examples,
                             mode: "white-box" | "gray-box" | "black-box",
                             source_run: run id of the crafting model, or null (white-box)}
`autoattack`                {attack: "autoattack", version: "standard", norm: "Linf", eps, n_examples,
                             mode: "white-box", library: "torchattacks",
                             iterations: {apgd-ce, apgd-t, fab-t: 100, square: 5000}}   (see `autoattack`)
`ood_aupr`, `ood_auroc`     {ood_set, protocol: "imagenet-o-200" | "all-classes", n_in, n_out}
                            (score −max softmax, OOD = positive; protocols: `imagenet_o`)
`natural_adv_top1`          {dataset_dir (resolved path), protocol: "imagenet-a-200", n_examples}
`deform_top1`               {deformation: "rotate20" | "rotate40" | "shear28.6" | "shear57.3" |
                             "zoomin60" | "zoomin80" | "zoomout120" | "zoomout140", seed, n_examples}
`corruption_top1`           {corruption, severity (1-5), n_examples}
`corruption_mean_top1`      {n_corruptions (standard ones present, of 15), n_examples}
==========================  ===================================================================

eps and step_size are stored as given (8, not 8.0). PGD robust accuracy is per-example worst
case: white-box, an example counts as broken if the clean input or any PGD iterate of any
restart is misclassified (see `attacks`); transfer attacks judge the crafted inputs on the
target. The prediction loop, the example subset and the metrics (top-1, AUROC/AUPR) are
`msda_cli.evaluation`'s; `command.run_robust` opens a stored run and stores the rows.
"""

from msda_cli.robust.attacks import AttackResult, evaluate_attack, fgsm, pgd
from msda_cli.robust.corruptions import STANDARD_CORRUPTIONS, available_corruptions, evaluate_corruptions
from msda_cli.robust.datasets import image_folder, open_ood_set
from msda_cli.robust.deform import DEFORMATIONS, evaluate_deformations
from msda_cli.robust.natural import evaluate_natural_adversarial
from msda_cli.robust.ood import evaluate_ood

__all__ = [
    "AttackResult", "evaluate_attack", "fgsm", "pgd",
    "STANDARD_CORRUPTIONS", "available_corruptions", "evaluate_corruptions",
    "image_folder", "open_ood_set",
    "DEFORMATIONS", "evaluate_deformations",
    "evaluate_natural_adversarial",
    "evaluate_ood",
]
