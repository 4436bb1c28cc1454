"""Common corruptions (Hendrycks & Dietterich 2019): CIFAR-10-C / CIFAR-100-C accuracy.

Folder layout (as distributed): `<corruption>.npy`, uint8 [5·N, H, W, 3] — the N test
images at severity 1, then severity 2, … 5 — and `labels.npy`, int [5·N] (the N labels
repeated per severity) or [N]. Any subset of the files may be present; the missing ones are
named through `log`. Rows: `corruption_top1` per corruption and severity and
`corruption_mean_top1`, the mean over the 15 standard corruptions present (all severities).
Files are memory-mapped, so only the evaluated examples are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from msda_cli.errors import MsdaError
from msda_cli.evaluation import batches, eval_mode, model_device, select_indices
from msda_cli.metric_names import CORRUPTION_MEAN_TOP1, CORRUPTION_TOP1

STANDARD_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = 5
EXPECTED = ("<corruption>.npy files (uint8, 5 severities x N images x H x W x 3, e.g. gaussian_noise.npy) "
            "and labels.npy, as in CIFAR-10-C / CIFAR-100-C")


def available_corruptions(folder) -> tuple[list[str], list[str]]:
    """(corruption files present, standard corruptions missing) in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MsdaError(f"corruption folder {folder} does not exist; expected {EXPECTED}")
    present = sorted(p.stem for p in folder.glob("*.npy") if p.stem != "labels")
    order = {c: i for i, c in enumerate(STANDARD_CORRUPTIONS + EXTRA_CORRUPTIONS)}
    present.sort(key=lambda c: (order.get(c, len(order)), c))
    missing = [c for c in STANDARD_CORRUPTIONS if c not in present]
    return present, missing


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise MsdaError(f"cannot read {path} ({type(e).__name__}); expected {EXPECTED}") from None


def evaluate_corruptions(model, folder, corruptions: list[str] | None = None, n_examples: int | None = None,
                         seed: int = 0, batch_size: int = 256, progress: bool = True,
                         image_size: int | None = None, log: Callable[[str], None] | None = None) -> list[tuple]:
    """Accuracy (percent) per corruption and severity, and the mean over the standard 15 present."""
    folder = Path(folder)
    present, missing = available_corruptions(folder)
    if corruptions is not None:
        absent = [c for c in corruptions if c not in present]
        if absent:
            raise MsdaError(f"{folder} has no {', '.join(c + '.npy' for c in absent)}; present: "
                            f"{', '.join(present) or 'none'}")
        present = list(corruptions)
        missing = []
    if not present:
        raise MsdaError(f"{folder} holds no corruption files; expected {EXPECTED}")
    if not (folder / "labels.npy").is_file():
        raise MsdaError(f"{folder} has no labels.npy; expected {EXPECTED}")
    if missing and log is not None:
        log(f"{len(missing)} of the {len(STANDARD_CORRUPTIONS)} standard corruptions are missing in {folder}: "
            f"{', '.join(missing)}")
    labels_all = np.asarray(_load(folder / "labels.npy")).astype(np.int64).reshape(-1)

    arrays = {}
    for c in present:
        arr = _load(folder / f"{c}.npy")
        if arr.ndim != 4 or arr.shape[0] % SEVERITIES or arr.shape[-1] not in (1, 3) or arr.dtype != np.uint8:
            raise MsdaError(f"{folder / (c + '.npy')} has shape {arr.shape} and type {arr.dtype}; expected {EXPECTED}")
        if image_size and (arr.shape[1] != image_size or arr.shape[2] != image_size):
            raise MsdaError(f"{c}.npy images are {arr.shape[1]}x{arr.shape[2]}, "
                            f"the model takes {image_size}x{image_size}")
        arrays[c] = arr
    n_per = {arr.shape[0] // SEVERITIES for arr in arrays.values()}
    if len(n_per) != 1:
        raise MsdaError(f"the corruption files in {folder} hold different numbers of images")
    n_per = n_per.pop()
    if len(labels_all) not in (n_per, SEVERITIES * n_per):
        raise MsdaError(f"labels.npy has {len(labels_all)} labels for {n_per} images per severity; expected {EXPECTED}")

    idx = select_indices(n_per, n_examples, seed).numpy()
    n = len(idx)
    chunks = [idx[i:i + batch_size] for i in range(0, n, batch_size)]
    jobs = [(c, s, chunk) for c in present for s in range(1, SEVERITIES + 1) for chunk in chunks]
    device = model_device(model)
    correct = {(c, s): 0 for c in present for s in range(1, SEVERITIES + 1)}
    with eval_mode(model), torch.no_grad():
        for c, s, chunk in batches(jobs, len(jobs), f"corruptions ({len(present)})", progress):
            rows = (s - 1) * n_per + chunk
            x = torch.from_numpy(np.ascontiguousarray(arrays[c][rows])).to(device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            y = torch.from_numpy(labels_all[rows] if len(labels_all) > n_per else labels_all[chunk]).to(device)
            correct[(c, s)] += int(model(x).argmax(dim=1).eq(y).sum())

    out = [(CORRUPTION_TOP1, 100.0 * k / n, None, {"corruption": c, "severity": s, "n_examples": n})
           for (c, s), k in correct.items()]
    standard = [c for c in present if c in STANDARD_CORRUPTIONS]
    if standard:
        mean = sum(100.0 * correct[(c, s)] / n for c in standard for s in range(1, SEVERITIES + 1))
        mean /= len(standard) * SEVERITIES
        out.append((CORRUPTION_MEAN_TOP1, mean, None, {"n_corruptions": len(standard), "n_examples": n}))
    elif log is not None:
        log("no standard corruption present: no corruption_mean_top1")
    return out
