"""Filters that several papers' tables share: training protocols and method settings.

Runs record only the mixer hyperparameters their recipe set, so a filter on a hyperparameter
at its method's default (HMix r = 0.5, DCutMix/DMixup k = 3, α = 1) is `Default(v)`: the
value, or not recorded.
"""

from __future__ import annotations

from msda_cli.report.match import OneOf

# Training protocols the papers state (the recipes follow them): runs of another protocol on the
# same data set and architecture (a MixupE PreActResNet50 run in the HMix table) stay out.
UNIFIED_CIFAR = {"epochs": 300, "optim.lr": 0.2}  # HMix/GMix Table 2, DCutMix Table 2 (Co-Mixup protocol)
CUTMIX_IMAGENET = {"epochs": 300, "optim.lr": 0.1}  # HMix/GMix Table 3, DCutMix Tables 3-5

# Verma et al.'s layer set k ∈ {0, 1, 2}; runs stored before `layers` existed mixed elsewhere
VERMA_LAYERS = {"mixer.layers": 2}
# MixupE's "ERM + additional loss" (the MixupE loss term without mixing) is not MixupE
NOT_ERM_PLUS_LOSS = {"mixer.erm": OneOf(False, None)}
