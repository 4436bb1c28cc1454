"""Natural adversarial examples (ImageNet-A protocol): accuracy with restricted logits.

ImageNet-A covers 200 of the 1000 ImageNet classes. Following its authors, the model's
logits are restricted to those classes before the argmax (protocol "imagenet-a-200").
The class list comes from the folder: each class sub-folder name (a WordNet id such as
`n01498041`) is matched, ignoring case and surrounding blanks, to the model's class names
(`info.classes`). Folder classes the model does not know are left out and reported; no
overlap at all is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Subset

from msda_cli.errors import MsdaError
from msda_cli.evaluation import predict, select_indices
from msda_cli.metric_names import NATURAL_ADV_TOP1
from msda_cli.robust.datasets import image_folder

PROTOCOL = "imagenet-a-200"


def _key(name: str) -> str:
    return str(name).strip().lower()


def match_classes(folder_classes: list[str], model_classes: list[str]) -> dict[int, int]:
    """{folder class index: model class index} for the folder classes the model knows."""
    model_index = {}
    for j, name in enumerate(model_classes):
        model_index.setdefault(_key(name), j)
    return {i: model_index[_key(c)] for i, c in enumerate(folder_classes) if _key(c) in model_index}


def restricted_predictions(logits: torch.Tensor, model_indices: torch.Tensor) -> torch.Tensor:
    """Argmax over the listed model classes only, as a position in `model_indices`."""
    return logits[:, model_indices].argmax(dim=1)


def evaluate_natural_adversarial(model, model_classes: list[str], folder, image_size: int, in_chans: int = 3,
                                 n_examples: int | None = None, seed: int = 0, batch_size: int = 256,
                                 progress: bool = True, workers: int = 0,
                                 log: Callable[[str], None] | None = None) -> list[tuple]:
    """`natural_adv_top1` (percent) on an ImageNet-A-style folder."""
    if not model_classes:
        raise MsdaError("the model's data set has no class names to match the folder's classes against")
    ds = image_folder(folder, image_size, in_chans)
    mapping = match_classes(ds.classes, model_classes)
    if not mapping:
        raise MsdaError(f"no class of {folder} ({', '.join(ds.classes[:3])}, ...) is one of the model's classes "
                        f"({', '.join(map(str, model_classes[:3]))}, ...); the folder names must match them")
    unknown = [c for i, c in enumerate(ds.classes) if i not in mapping]
    if unknown and log is not None:
        log(f"{len(unknown)} of {len(ds.classes)} folder classes are not model classes and are left out: "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    folder_ids = sorted(mapping)
    position = {f: k for k, f in enumerate(folder_ids)}
    model_indices = torch.tensor([mapping[f] for f in folder_ids])
    eligible = [i for i, t in enumerate(ds.targets) if t in mapping]
    if not eligible:
        raise MsdaError(f"{folder} has no images in the classes the model knows")
    chosen = [eligible[i] for i in select_indices(len(eligible), n_examples, seed).tolist()]
    loader = DataLoader(Subset(ds, chosen), batch_size=batch_size, shuffle=False, num_workers=workers)
    logits, labels = predict(model, loader, description=f"natural adversarial {Path(folder).name}", progress=progress)
    target = torch.tensor([position[int(t)] for t in labels])
    acc = 100.0 * restricted_predictions(logits, model_indices).eq(target).float().mean().item()
    return [(NATURAL_ADV_TOP1, acc, None,
             {"dataset_dir": str(Path(folder).resolve()), "protocol": PROTOCOL, "n_examples": len(chosen)})]
