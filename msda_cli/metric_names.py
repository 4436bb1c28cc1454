"""The names under which metrics are stored: one source for producers, reports and tests.

A metric row is (kind, name, value, epoch, params). Producers (the training loop, `msda eval`,
`msda robust`, `msda subsample`, `msda analyze`) import the names below; report specs and tests
import the same constants, so a rename is one edit here. Accuracy-like values are percentages.
"""

from __future__ import annotations

# ----- kinds ----------------------------------------------------------------------------
TRAIN, EVAL, ROBUST, SUBSAMPLE, ANALYSIS = "train", "eval", "robust", "subsample", "analysis"
METRIC_KINDS = (TRAIN, EVAL, ROBUST, SUBSAMPLE, ANALYSIS)

# ----- kind train: per epoch (epoch = 0-based index) ------------------------------------
TRAIN_LOSS = "train_loss"
LR = "lr"
TEST_TOP1 = "test_top1"
TEST_TOP5 = "test_top5"
TEST_LOSS = "test_loss"  # the clean test NLL (MixupE Figure 1 plots it)
VAL_TOP1, VAL_LOSS = "val_top1", "val_loss"  # on the held-out validation split (data.val_fraction > 0)
# a run with `ema` > 0 is its EMA model (test_top1, eval's top1 ...): the raw weights' test top-1, per epoch and final
RAW_TOP1 = "raw_top1"
EPOCH_TIME = "epoch_time_s"
# ----- kind train: once per run (epoch null) ---------------------------------------------
TRAIN_TIME = "train_time_s"
IMAGES_PER_S = "images_per_s"

# ----- kind eval: clean test metrics (epoch null) ----------------------------------------
TOP1, TOP5, NLL, ECE = "top1", "top5", "nll", "ece"
# also of kind eval, once per run: VAL_TOP1 and VAL_LOSS of the final model, where a validation split exists

# ----- kind robust (settings in params) ---------------------------------------------------
FGSM, PGD = "fgsm", "pgd"  # params: attack, eps, steps, step_size, mode, source_run
AUTOATTACK = "autoattack"  # params: attack, version, norm, eps, n_examples, mode, library
CLEAN_TOP1 = "clean_top1"  # the attacked subset's clean accuracy
OOD_AUPR, OOD_AUROC = "ood_aupr", "ood_auroc"  # params: ood_set, protocol (one of these two:)
OOD_HENDRYCKS, OOD_ALL_CLASSES = "imagenet-o-200", "all-classes"  # ImageNet-O's 200 classes; the whole test set
NATURAL_ADV_TOP1 = "natural_adv_top1"  # ImageNet-A; params: protocol
DEFORM_TOP1 = "deform_top1"  # params: deformation
CORRUPTION_TOP1 = "corruption_top1"  # params: corruption, severity
CORRUPTION_MEAN_TOP1 = "corruption_mean_top1"  # mean over the standard corruptions present

# ----- kind analysis ----------------------------------------------------------------------
GRADPROD = "gradprod"  # params: offset_distance, output, ...
LANDSCAPE_LOSS, LANDSCAPE_TOP1 = "landscape_loss", "landscape_top1"  # params: direction, t
