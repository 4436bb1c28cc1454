"""The evaluated examples: all of a set, or a fixed seeded subset that every model sees alike.

`select_indices(n_total, n_examples, seed)` is the first `n_examples` of a seeded permutation
(sorted, so reading stays sequential), the same for every model evaluated with that seed;
`None` means every example in natural order. `check_subset` is the one check of the two
settings (`--n-examples`, `--batch-size`) for every command that evaluates on a subset.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from msda_cli.checks import check_int
from msda_cli.errors import MsdaError


def check_subset(n_examples: int | None, batch_size: int) -> None:
    """MsdaError naming the flag for a subset size or a batch size below 1."""
    if n_examples is not None:
        check_int("--n-examples", n_examples, min=1)
    check_int("--batch-size", batch_size, min=1)


def select_indices(n_total: int, n_examples: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of the evaluated examples: all of them, or the first N of a seeded permutation."""
    if n_total <= 0:
        raise MsdaError("the evaluation set is empty")
    if n_examples is not None:
        check_int("--n-examples", n_examples, min=1)
    if n_examples is None or n_examples >= n_total:
        return torch.arange(n_total)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_total, generator=g)[: int(n_examples)].sort().values


def subset_loader(dataset: Dataset, n_examples: int | None, seed: int, batch_size: int,
                  workers: int = 0) -> tuple[DataLoader, int]:
    """A sequential loader over the selected subset, and its size."""
    check_int("--batch-size", batch_size, min=1)
    idx = select_indices(len(dataset), n_examples, seed)
    loader = DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False,
                        num_workers=workers)
    return loader, len(idx)
