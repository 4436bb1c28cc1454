"""The validation split: a stratified, seeded part of the training split held out (`data.val_fraction`).

`holdout(targets, fraction, seed)` takes round(fraction · n_c) samples of every class c (at least
one where the class has two or more, never all of one) by a seeded permutation per class, and
returns the sorted indices of the samples kept for training and of those held out. The same
labels, fraction and seed give the same split on any machine (a CPU torch generator).
"""

from __future__ import annotations

import torch

from msda_cli.checks import check_float
from msda_cli.errors import MsdaError


def check_fraction(fraction: float) -> float:
    """`data.val_fraction` in [0, 1): 0 holds nothing out."""
    return check_float("data.val_fraction", fraction, min=0, max=1, open="max")


def holdout(targets, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices), each sorted; stratified by class, seeded."""
    check_fraction(fraction)
    targets = torch.as_tensor(targets, dtype=torch.long)
    g = torch.Generator().manual_seed(int(seed))
    held = []
    for c in torch.unique(targets).tolist():  # ascending classes: the draws do not depend on sample order
        members = torch.nonzero(targets == c).flatten()
        n = len(members)
        k = min(max(round(fraction * n), 1 if n > 1 else 0), n - 1) if fraction > 0 else 0
        held.append(members[torch.randperm(n, generator=g)[:k]])
    val = torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.long)
    if fraction > 0 and len(val) == 0:
        raise MsdaError(f"data.val_fraction={fraction} holds out no sample of the {len(targets)} training samples")
    keep = torch.ones(len(targets), dtype=torch.bool)
    keep[val] = False
    return torch.nonzero(keep).flatten(), val


def resolve_split_seed(options: dict, seed: int) -> dict:
    """A data set's options with `split_seed: seed` read as the run's seed (a new train/test split per
    seed, as a table of trials over splits needs); an integer stays as it is."""
    value = options.get("split_seed")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return dict(options)
    if value != "seed":
        raise MsdaError(f"data.options.split_seed must be an integer or 'seed' (the run's seed), got {value!r}")
    return {**options, "split_seed": int(seed)}
