"""What every robustness measure shares: the fixed example subset, batches, progress, device.

`select_indices(n_total, n_examples, seed)` is the first `n_examples` of a seeded permutation
(sorted, so reading stays sequential), the same for every model evaluated with that seed;
`None` means every example in natural order.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from msda_cli.errors import MsdaError


def select_indices(n_total: int, n_examples: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of the evaluated examples: all of them, or the first N of a seeded permutation."""
    if n_total <= 0:
        raise MsdaError("the evaluation set is empty")
    if n_examples is None or n_examples >= n_total:
        return torch.arange(n_total)
    if n_examples < 1:
        raise MsdaError(f"--n-examples must be at least 1 (got {n_examples})")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_total, generator=g)[: int(n_examples)].sort().values


def subset_loader(dataset: Dataset, n_examples: int | None, seed: int, batch_size: int,
                  workers: int = 0) -> tuple[DataLoader, int]:
    """A sequential loader over the selected subset, and its size."""
    if batch_size < 1:
        raise MsdaError(f"batch size must be at least 1 (got {batch_size})")
    idx = select_indices(len(dataset), n_examples, seed)
    loader = DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False,
                        num_workers=workers)
    return loader, len(idx)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


@contextmanager
def eval_mode(*models: nn.Module):
    """Put models in eval mode for the block and restore each one's previous mode."""
    states = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        yield
    finally:
        for m, s in zip(models, states):
            m.train(s)


def batches(loader: Iterable, total: int | None, description: str, progress: bool) -> Iterator:
    """Iterate `loader`, with a rich progress bar over batches when `progress` is true."""
    if not progress:
        yield from loader
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in loader:
            yield item
            bar.advance(task)


@torch.no_grad()
def predict_logits(model: nn.Module, loader: Iterable, description: str, progress: bool,
                   transform: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits (on CPU) and labels of every batch; `transform(x, batch_index)` is applied first."""
    device = model_device(model)
    out, labels = [], []
    with eval_mode(model):
        for i, (x, y) in enumerate(batches(loader, len(loader) if hasattr(loader, "__len__") else None,
                                           description, progress)):
            x = x.to(device, torch.float32)
            if transform is not None:
                x = transform(x, i)
            out.append(model(x).float().cpu())
            labels.append(torch.as_tensor(y).long().cpu())
    return torch.cat(out), torch.cat(labels)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * logits.argmax(dim=1).eq(labels).float().mean().item()
