"""Training batches made on the device from a data set held in memory (`data.pipeline: device`).

The sets whose samples are tensors in memory (`TensorDataset`: CIFAR, SVHN, MNIST, Fashion-MNIST,
digits, tabular), possibly restricted to a subset, are copied once onto the training device. Each
epoch then takes its order from the run's sampler (a `DistributedSampler`: the same shuffle and
per-rank partition as the DataLoader path, every sample once per epoch), draws every sample's crop
offsets and flip for the epoch from the run's data generator (on the CPU, so a seed gives the same
batches on any device), and makes each batch with a few whole-batch operations on the device: rows
gathered, zero-padded, cropped and flipped in one gather, and scaled to [0, 1] as the per-sample
transform does (`uint8 -> float32, * (1 / 255)`). No DataLoader, no worker processes.

The distribution is the per-sample path's (`transforms.SmallImage`): the top and left offsets of
the crop are uniform over the 2·padding + 1 positions of the padded image (RandomCrop's
`randint(0, H + 2p - size + 1)` each), and a crop is flipped with probability ½. Sets without a
per-sample transform (digits, tabular) are fed as they are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from msda_cli.data import LabeledDataset, TensorDataset
from msda_cli.data.transforms import SmallImage


def held_in_memory(dataset: LabeledDataset) -> tuple[TensorDataset, torch.Tensor | None] | None:
    """The in-memory samples behind `dataset` and the indices a subset keeps of them (None: all);
    None when its samples are files or have a transform the device pipeline does not make."""
    base, indices = dataset.base, None
    while isinstance(base, Subset):  # a subset of a subset keeps the composed indices
        inner = torch.as_tensor(base.indices, dtype=torch.long)
        indices, base = (inner if indices is None else inner[indices]), base.dataset
    if not isinstance(base, TensorDataset):
        return None
    if base.transform is not None and not isinstance(base.transform, SmallImage):
        return None
    return base, indices


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int, size: int) -> torch.Tensor:
    """Crop `size`×`size` at `offsets` [B, 2] (top, left in the zero-padded image) from each image of
    `x` [B, C, H, W] after zero padding `padding`, mirrored where `flips` [B] is true; one gather."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    width = w + 2 * padding
    steps = torch.arange(size, device=x.device)
    rows = offsets[:, :1] + steps  # [B, size]
    cols = offsets[:, 1:] + torch.where(flips[:, None], steps.flip(0), steps)  # flip of the crop: read it backwards
    where = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, size * size).expand(b, c, size * size)
    return padded.view(b, c, -1).gather(2, where).view(b, c, size, size)


class DeviceBatches:
    """The training batches of one epoch per iteration, made on `device` (see the module docstring).

    `sampler` gives each epoch's order (its `set_epoch` is called by the loop, as for a DataLoader);
    `generator` (a CPU generator, re-seeded by the loop every epoch) draws the crops and flips.
    A last batch of one sample is dropped when `drop_last` (BatchNorm cannot train on it)."""

    def __init__(self, dataset: LabeledDataset, sampler, batch_size: int, drop_last: bool, device,
                 generator: torch.Generator):
        found = held_in_memory(dataset)
        if found is None:
            raise ValueError(f"data set {dataset.info.name!r} is not held in memory as tensors")
        samples, indices = found
        x, y = samples.x, torch.as_tensor(samples.y, dtype=torch.long)
        if indices is not None:
            x, y = x[indices], y[indices]
        self.device = torch.device(device)
        self.x = x.to(self.device).contiguous()  # once per run; on the CPU the data set's own tensor
        self.y = y.to(self.device)
        self.transform = samples.transform
        self.sampler, self.batch_size, self.drop_last, self.generator = sampler, batch_size, drop_last, generator

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _augmentation(self, n: int):
        """Every sample's crop offsets [n, 2] and flips [n] for this epoch, or None (no crop)."""
        t = self.transform
        if t is None or not t.train:
            return None
        positions = self.x.shape[-1] + 2 * t.padding - t.size + 1
        offsets = torch.randint(0, positions, (n, 2), generator=self.generator)
        flips = torch.rand(n, generator=self.generator) < 0.5 if t.flip else torch.zeros(n, dtype=torch.bool)
        return offsets.to(self.device), flips.to(self.device)

    def __iter__(self):
        order = torch.as_tensor(list(iter(self.sampler)), dtype=torch.long)
        n = len(order) // self.batch_size * self.batch_size if self.drop_last else len(order)
        augmentation = self._augmentation(n)
        order = order.to(self.device)
        rows = self.x.view(len(self.x), -1)  # index_select of whole rows: the fastest gather of samples
        for start in range(0, n, self.batch_size):
            idx = order[start:min(start + self.batch_size, n)]
            x = rows.index_select(0, idx).view(len(idx), *self.x.shape[1:])
            if augmentation is not None:
                offsets, flips = augmentation
                x = crop_flip(x, offsets[start:start + len(idx)], flips[start:start + len(idx)],
                              self.transform.padding, self.transform.size)
            if self.transform is not None and not x.is_floating_point():
                x = x.to(torch.float32).mul_(1.0 / 255)  # as ToDtype(float32, scale=True): the same values
            yield x, self.y.index_select(0, idx)
