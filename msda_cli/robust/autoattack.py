"""AutoAttack (Croce & Hein 2020), the standard L∞ version, run by torchattacks.

`version='standard'`: APGD-CE, APGD-T, FAB-T and Square (5 000 queries), one after another,
each on the examples the ones before did not break (torchattacks' `MultiAttack`). We hand it
only the still-robust examples, those the model classifies correctly, so clean errors cost no
attack time and count as broken, as in AutoAttack's own bookkeeping. torchattacks' targeted
attacks take `n_classes − 1` target classes: we pass `n_classes = min(C, 10)`, the standard's 9
targets (all of them with fewer classes), so a 1000-class model is not attacked 999 times over.
torchattacks builds APGD, APGD-T and FAB-T with its default 10 iterations; we set them to the
standard's 100 (Croce & Hein's reference code; Square keeps its 5 000 queries), and the params
store each count.

torchattacks pins `requests~=2.25.1`, which it never imports; it is installed with
`pip install --no-deps` (`make install`, `make dev`), and its absence is one line naming that.
Its attacks reseed torch's global generator; the caller's random state is restored afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.evaluation import batches, eval_mode, model_device, subset_loader
from msda_cli.metric_names import AUTOATTACK, CLEAN_TOP1
from msda_cli.robust.attacks import _num, check_attack

VERSION, NORM = "standard", "Linf"
# the standard's iterations per sub-attack (queries for Square), in torchattacks' MultiAttack order
ITERATIONS = {"apgd-ce": 100, "apgd-t": 100, "fab-t": 100, "square": 5000}
INSTALL = "pip install --no-deps 'torchattacks>=3.5'"


def torchattacks():
    """The torchattacks module, or MsdaError saying how to install it."""
    try:
        import torchattacks as module
    except ImportError:
        raise MsdaError(f"--attack autoattack runs torchattacks' AutoAttack, which is not installed: {INSTALL} "
                        "(without its stale requests pin)") from None
    return module


def still_robust(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, num_classes: int,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, robust), bool [B]: classified correctly on x, and still after the standard AutoAttack
    (ε in pixel units), which attacks the correct ones only."""
    with torch.no_grad():
        correct = model(x).argmax(dim=1).eq(y)
    robust = correct.clone()
    idx = correct.nonzero().squeeze(1)
    if len(idx) == 0 or eps == 0:
        return correct, robust
    attack = torchattacks().AutoAttack(model, norm=NORM, eps=eps / 255.0, version=VERSION,
                                       n_classes=min(int(num_classes), 10), seed=int(seed))
    apgd, apgd_t, fab_t, _square = attack._autoattack.attacks  # Square's 5 000 queries are torchattacks' own
    apgd.steps, apgd_t.steps, fab_t.steps = ITERATIONS["apgd-ce"], ITERATIONS["apgd-t"], ITERATIONS["fab-t"]
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        x_adv = attack(x[idx], y[idx])
    with torch.no_grad():
        robust[idx] = model(x_adv).argmax(dim=1).eq(y[idx])
    return correct, robust


def evaluate_autoattack(model: nn.Module, dataset, eps: float = 8, n_examples: int | None = None,
                        batch_size: int = 256, seed: int = 0, progress: bool = True, workers: int = 0,
                        include_clean: bool = True) -> list[tuple]:
    """Accuracy (percent) under the standard AutoAttack, white-box, on a fixed subset, as metric rows
    `clean_top1` (unless `include_clean` is false) and `autoattack`."""
    check_attack(AUTOATTACK, eps)
    torchattacks()
    loader, n = subset_loader(dataset, n_examples, seed, batch_size, workers)
    device = model_device(model)
    n_clean = n_robust = 0
    with eval_mode(model):
        num_classes = None
        for x, y in batches(loader, len(loader), f"AutoAttack ({VERSION}, {NORM}) ε={_num(eps)}/255", progress):
            x, y = x.to(device, torch.float32), torch.as_tensor(y).to(device)
            if num_classes is None:
                with torch.no_grad():
                    num_classes = model(x[:1]).shape[1]
            correct, robust = still_robust(model, x, y, eps, num_classes, seed)
            n_clean, n_robust = n_clean + int(correct.sum()), n_robust + int(robust.sum())
    rows = [(CLEAN_TOP1, 100.0 * n_clean / n, None, {"n_examples": n})] if include_clean else []
    params = {"attack": AUTOATTACK, "version": VERSION, "norm": NORM, "eps": _num(eps), "n_examples": n,
              "mode": "white-box", "library": "torchattacks", "iterations": dict(ITERATIONS)}
    return rows + [(AUTOATTACK, 100.0 * n_robust / n, None, params)]
