"""Test-set deformations of MixupE Table 8 (after Manifold Mixup, Verma et al. 2019).

Eight deformations, each one affine map per image applied with `affine_grid`/`grid_sample`
(vectorized over the batch, nearest interpolation, fill 0, about the image centre):

=============  ==========================================================
rotate20/40    angle θ ~ U(−20°, 20°) / U(−40°, 40°) per image
shear28.6/57.3 shear angle s ~ U(−28.6°, 28.6°) / U(−57.3°, 57.3°) per image
               (0.5 and 1 radian, the Keras/torchsample `shear_range` values)
zoomin60/80    zoom factor z = 0.6 / 0.8: the output shows the central 60 % / 80 %
               of the image, magnified to the full size (so 60 % is the harder one)
zoomout120/140 z = 1.2 / 1.4: the image shrunk to 1/1.2 / 1/1.4 of its side, fill 0
=============  ==========================================================

The maps follow the Keras/torchsample `apply_transform` convention that the original
deformation code used: a matrix sends output coordinates (row, col), centred, to input
coordinates. Rotation [[cos θ, −sin θ], [sin θ, cos θ]]; shear [[1, −sin s], [0, cos s]];
zoom [[z, 0], [0, z]] — hence "zoom < 1 zooms in". On the displayed image a positive θ turns
the content clockwise (tested against `torch.rot90`); the ranges are symmetric anyway.

Per-image values are drawn from a CPU `torch.Generator` seeded with `seed`, fresh for each
deformation, for the whole evaluated subset at once: every model sees the same deformed
test set, whatever the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from msda_cli.checks import check_choice
from msda_cli.errors import MsdaError
from msda_cli.evaluation import accuracy, predict, subset_loader
from msda_cli.metric_names import DEFORM_TOP1


@dataclass(frozen=True)
class Deformation:
    kind: str  # rotate | shear (angles in degrees) | zoom (factor)
    low: float
    high: float

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n values ~ U(low, high) (float64, CPU); a fixed value when low == high."""
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return self.low + (self.high - self.low) * u


DEFORMATIONS: dict[str, Deformation] = {
    "rotate20": Deformation("rotate", -20.0, 20.0),
    "rotate40": Deformation("rotate", -40.0, 40.0),
    "shear28.6": Deformation("shear", -28.6, 28.6),
    "shear57.3": Deformation("shear", -57.3, 57.3),
    "zoomin60": Deformation("zoom", 0.6, 0.6),
    "zoomin80": Deformation("zoom", 0.8, 0.8),
    "zoomout120": Deformation("zoom", 1.2, 1.2),
    "zoomout140": Deformation("zoom", 1.4, 1.4),
}


KINDS = ("rotate", "shear", "zoom")


def affine_matrices(kind: str, values: torch.Tensor) -> torch.Tensor:
    """[n, 2, 3] `affine_grid` matrices (x = column, y = row) for per-image `values`."""
    check_choice("deformation kind", kind, KINDS)
    v = values.double()
    zero, one = torch.zeros_like(v), torch.ones_like(v)
    if kind == "rotate":
        a = v * (math.pi / 180.0)
        c, s = torch.cos(a), torch.sin(a)
        # (row, col) matrix [[c, -s], [s, c]] rewritten for (x=col, y=row)
        rows = [[c, s], [-s, c]]
    elif kind == "shear":
        a = v * (math.pi / 180.0)
        # (row, col) matrix [[1, -sin a], [0, cos a]]: row_in = row - sin(a)·col, col_in = cos(a)·col
        rows = [[torch.cos(a), zero], [-torch.sin(a), one]]
    else:  # zoom
        if bool((v <= 0).any()):
            raise MsdaError("zoom factors must be > 0")
        rows = [[v, zero], [zero, v]]
    theta = torch.stack([torch.stack(r + [zero], dim=-1) for r in rows], dim=1)
    return theta.float()


def apply_affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample images x [B, C, H, W] through per-image matrices (nearest, fill 0)."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def deform(x: torch.Tensor, kind: str, values) -> torch.Tensor:
    """Deform batch x with one value (or one per image) of `kind`."""
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if values.numel() == 1:
        values = values.expand(len(x))
    if len(values) != len(x):
        raise MsdaError(f"{len(values)} deformation values for a batch of {len(x)}")
    return apply_affine(x, affine_matrices(kind, values))


def lookup(name: str) -> Deformation:
    return DEFORMATIONS[check_choice("deformation", name, DEFORMATIONS)]


def evaluate_deformations(model, dataset, deformations=None, seed: int = 0, n_examples: int | None = None,
                          batch_size: int = 256, progress: bool = True, workers: int = 0) -> list[tuple]:
    """`deform_top1` (percent) for each named deformation (default: all eight of Table 8)."""
    names = list(DEFORMATIONS) if deformations is None else list(deformations)
    specs = [lookup(name) for name in names]
    loader, n = subset_loader(dataset, n_examples, seed, batch_size, workers)
    rows = []
    for name, spec in zip(names, specs):
        values = spec.sample(n, torch.Generator().manual_seed(int(seed)))
        bounds = list(range(0, n, batch_size)) + [n]  # batch i holds values[bounds[i]:bounds[i + 1]]

        def transform(x, i, values=values, spec=spec, bounds=bounds):
            return deform(x, spec.kind, values[bounds[i]:bounds[i + 1]])

        logits, labels = predict(model, loader, transform=transform, description=f"deform {name}",
                                 progress=progress)
        rows.append((DEFORM_TOP1, accuracy(logits, labels), None,
                     {"deformation": name, "seed": int(seed), "n_examples": n}))
    return rows
