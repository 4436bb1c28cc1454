"""The prediction loop: logits and labels of a model over a loader, in eval mode, without gradients.

One loop for the training loop and for stored runs. With an `accelerator` (the training loop) the
loader is Accelerate-prepared, the forward pass runs under its autocast and every process's
predictions are gathered with `gather_for_metrics` (no duplicates from padding), so N processes
measure what one does. Without one, batches go to the model's own device as fp32. Either way the
model is in eval mode for the call (its previous mode is restored) and the fp32 logits and int64
labels come back on the CPU.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from msda_cli.evaluation.metrics import classification_metrics


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
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in loader:
            yield item
            bar.advance(task)


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, accelerator=None, transform: Callable | None = None,
            description: str = "predicting", progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits [N, C] and labels [N] (on the CPU) of every batch of `loader`, in order.

    `transform(x, batch_index)` is applied to each input batch on the device first.
    """
    device = model_device(model)
    total = len(loader) if hasattr(loader, "__len__") else None
    all_logits, all_labels = [], []
    with eval_mode(model):
        for i, (x, y) in enumerate(batches(loader, total, description, progress)):
            if accelerator is None:
                # a graph batch (PyG Batch) moves as a whole; its features are float already
                x = x.to(device, torch.float32, non_blocking=True) if torch.is_tensor(x) else x.to(device)
                logits = model(x if transform is None else transform(x, i))
            else:
                with accelerator.autocast():
                    logits = model(x if transform is None else transform(x, i))
                logits, y = accelerator.gather_for_metrics((logits.float(), y))
            all_logits.append(logits.float().cpu())
            all_labels.append(torch.as_tensor(y).long().cpu())
    return torch.cat(all_logits), torch.cat(all_labels)


def evaluate(model: nn.Module, loader: Iterable, accelerator=None) -> dict[str, float]:
    """The clean test metrics {top1, top5, ece, nll} of `model` over the whole loader."""
    return classification_metrics(*predict(model, loader, accelerator))
