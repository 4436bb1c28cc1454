"""L∞ attacks on models that take inputs in [0, 1]: FGSM and PGD with random restarts.

ε and the step size are in 0–255 pixel units (`eps=8` is 8/255), as the papers write them.
Gradients are of the summed cross-entropy with respect to the input only (model weights get
no `.grad`); a model whose output does not depend on its input gets a zero gradient.

PGD (Madry et al.): start at x + U(−ε, ε) clipped to [0, 1], then `steps` times
x ← Π_{B∞(x₀, ε) ∩ [0,1]}(x + step·sign(∇ₓ CE)). Evaluation is per-example worst case:

* `per_iterate=True` (white-box, the default): an example counts as broken when *any*
  point the attack visits is misclassified — the clean input, the random start, or any
  iterate of any restart — and its adversarial input is the first such point. This is what
  most evaluation code does (AutoAttack's bookkeeping) and it makes robust accuracy
  monotone: more steps or more restarts (same seed) never raise it, and it never exceeds
  clean accuracy. With `drop_broken=True` broken examples leave the batch, which changes
  nothing in the result but saves the work on them.
* `per_iterate=False` (transfer: crafting on a source model, judged on another): every
  restart runs all steps; per example the final iterate of the first restart that fools
  the source is kept, else the last restart's final iterate.

Random starts are drawn for the whole batch from `generator` at every restart (whichever
examples are still active), so a seed fixes the attack whatever the step count.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_choice, check_float, check_int
from msda_cli.errors import MsdaError
from msda_cli.evaluation import batches, eval_mode, model_device, subset_loader
from msda_cli.metric_names import AUTOATTACK, CLEAN_TOP1, FGSM, PGD

from msda_cli.choices import ATTACKS  # one source with --help


class AttackResult(NamedTuple):
    x_adv: torch.Tensor  # adversarial inputs, within the ε-ball of x and [0, 1]
    fooled: torch.Tensor  # bool [B]: the crafting model misclassifies the kept point


def check_attack(attack: str | None, eps: float, steps: int = 1, step_size: float = 1.0, restarts: int = 1) -> None:
    """The one check of the attack settings (command line and Python alike): MsdaError naming the flag."""
    if attack is not None:
        check_choice("attack", attack, ATTACKS)
    check_float("--eps", eps, min=0, max=255, note="pixel units")
    check_int("--steps", steps, min=1)
    check_float("--step-size", step_size, min=0, open="min", note="pixel units")
    check_int("--restarts", restarts, min=1)


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits at x, ∇ₓ Σ CE(model(x), y)); zero gradient if the output ignores x."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, reduction="sum")
        if not loss.requires_grad:
            return logits.detach(), torch.zeros_like(x)
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    return logits.detach(), (torch.zeros_like(x) if grad is None else grad)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8) -> torch.Tensor:
    """clip₀¹(x + ε·sign(∇ₓ CE)), ε in pixel units."""
    check_attack(FGSM, eps)
    x = x.detach().float()
    _, grad = input_gradient(model, x, y)
    return (x + (eps / 255.0) * grad.sign()).clamp_(0.0, 1.0).detach()


def _uniform(shape, eps: float, generator: torch.Generator | None, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=gen_device)
    return ((2.0 * u - 1.0) * eps).to(device)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8, step_size: float = 2,
        steps: int = 10, restarts: int = 1, generator: torch.Generator | None = None,
        per_iterate: bool = True, drop_broken: bool = True,
        clean_logits: torch.Tensor | None = None) -> AttackResult:
    """PGD-L∞ with random start and restarts; see the module docstring for the bookkeeping.

    `clean_logits` (the model's output on x, if the caller has it) saves one forward pass.
    """
    check_attack(PGD, eps, steps, step_size, restarts)
    eps, alpha = eps / 255.0, step_size / 255.0
    x, y = x.detach().float(), y.detach()
    n = len(x)
    x_adv = x.clone()
    if per_iterate:  # the clean point is the first point visited
        if clean_logits is None:
            with torch.no_grad():
                clean_logits = model(x)
        fooled = clean_logits.argmax(dim=1).ne(y)
    else:
        fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
    drop = per_iterate and drop_broken
    for _ in range(int(restarts)):
        noise = _uniform(x.shape, eps, generator, x.device)  # whole batch: same draws whatever is active
        idx = (~fooled).nonzero().squeeze(1) if drop else torch.arange(n, device=x.device)
        if len(idx) == 0:
            continue
        x0, yy = x[idx], y[idx]
        lo, hi = (x0 - eps).clamp_(min=0.0), (x0 + eps).clamp_(max=1.0)  # B∞(x₀, ε) ∩ [0, 1]
        xt = (x0 + noise[idx]).clamp_(0.0, 1.0)
        for t in range(int(steps) + 1):
            last = t == steps
            if last:
                with torch.no_grad():
                    logits = model(xt)
            else:
                logits, grad = input_gradient(model, xt, yy)
            wrong = logits.argmax(dim=1).ne(yy)
            if per_iterate:
                new = wrong & ~fooled[idx]
                x_adv[idx[new]] = xt[new]
                fooled[idx[new]] = True
            if last:
                break
            xt = torch.add(xt, grad.sign_(), alpha=alpha).clamp_(lo, hi)
            if drop:
                keep = ~wrong
                idx, yy, xt, lo, hi = idx[keep], yy[keep], xt[keep], lo[keep], hi[keep]
                if len(idx) == 0:
                    break
        if len(idx) == 0:
            continue
        if per_iterate:  # not broken (yet): keep the last iterate
            rest = ~fooled[idx]
            x_adv[idx[rest]] = xt[rest]
        else:  # first restart whose final iterate fools the model, else the latest one
            take = ~fooled[idx]
            x_adv[idx[take]] = xt[take]
            fooled[idx[take]] = wrong[take]
    return AttackResult(x_adv.detach(), fooled)


def _num(v: float):
    """A setting as JSON will show it: 8 rather than 8.0."""
    v = float(v)
    return int(v) if v.is_integer() else v


def same_architecture(a: nn.Module, b: nn.Module) -> bool:
    """The one rule of gray-box (True) against black-box: the same modules in the same order, each with the same
    settings (`extra_repr`: channels, kernel, stride ...), and the same parameter and buffer shapes. Two runs of
    one architecture name whose model options change the network (a width, a stem stride) are black-box."""
    if [(type(m), m.extra_repr()) for m in a.modules()] != [(type(m), m.extra_repr()) for m in b.modules()]:
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


MODES = ("white-box", "gray-box", "black-box")


def evaluate_attack(model: nn.Module, dataset, attack: str = PGD, eps: float = 8, steps: int = 10,
                    step_size: float = 2, restarts: int = 1, source_model: nn.Module | None = None,
                    mode: str | None = None, source_run: str | None = None, n_examples: int | None = None,
                    batch_size: int = 256, seed: int = 0, progress: bool = True, workers: int = 0,
                    include_clean: bool = True, drop_broken: bool = True) -> list[tuple]:
    """Accuracy (percent) under FGSM or PGD on a fixed subset of `dataset`, as metric rows.

    White-box: the attack uses `model` itself. Transfer: adversarial inputs are crafted on
    `source_model` (on its own device) and judged on `model`; `mode` defaults to "gray-box"
    when both have the same architecture, else "black-box". Rows: `clean_top1` (unless
    `include_clean` is false) and `fgsm` or `pgd`; see `msda_cli.robust` for their params.
    """
    check_attack(attack, eps, steps, step_size, restarts)
    if attack == AUTOATTACK:
        raise MsdaError("AutoAttack is evaluated by msda_cli.robust.autoattack.evaluate_autoattack")
    if attack == FGSM and (source_model is not None or mode not in (None, "white-box")):
        raise MsdaError("FGSM is evaluated white-box only; use --attack pgd with --source for transfer attacks")
    if mode is not None:
        check_choice("attack mode", mode, MODES)
    if source_model is None:
        if mode not in (None, "white-box"):
            raise MsdaError(f"a {mode} attack needs a source model (--source RUN_ID) to craft the inputs on")
        mode = "white-box"
    else:
        if mode == "white-box":
            raise MsdaError("a white-box attack uses the model itself; drop --source or choose gray-box/black-box")
        if mode is None:
            mode = "gray-box" if same_architecture(source_model, model) else "black-box"

    loader, n = subset_loader(dataset, n_examples, seed, batch_size, workers)
    device = model_device(model)
    src_device = model_device(source_model) if source_model is not None else device
    generator = torch.Generator().manual_seed(int(seed))
    n_clean = n_adv = 0
    models = (model,) if source_model is None else (model, source_model)
    with eval_mode(*models):
        if source_model is not None:  # same label space?
            x0 = dataset[0][0].unsqueeze(0).float()
            with torch.no_grad():
                c_target = model(x0.to(device)).shape[1]
                c_source = source_model(x0.to(src_device)).shape[1]
            if c_target != c_source:
                raise MsdaError(f"the source model was trained on other classes ({c_source} outputs, "
                                f"the target has {c_target}); choose a source run on the same data set")
        label = f"{attack} {mode} ε={_num(eps)}/255" + (f" {steps} steps" if attack == PGD else "")
        for x, y in batches(loader, len(loader), label, progress):
            x, y = x.to(device, torch.float32), torch.as_tensor(y).to(device)
            with torch.no_grad():
                clean_logits = model(x)
            n_clean += int(clean_logits.argmax(dim=1).eq(y).sum())
            if attack == FGSM:
                x_adv = fgsm(model, x, y, eps)
            elif mode == "white-box":
                res = pgd(model, x, y, eps, step_size, steps, restarts, generator,
                          per_iterate=True, drop_broken=drop_broken, clean_logits=clean_logits)
                n_adv += int((~res.fooled).sum())
                continue
            else:
                res = pgd(source_model, x.to(src_device), y.to(src_device), eps, step_size, steps, restarts,
                          generator, per_iterate=False)
                x_adv = res.x_adv.to(device)
            with torch.no_grad():
                n_adv += int(model(x_adv).argmax(dim=1).eq(y).sum())

    rows = []
    if include_clean:
        rows.append((CLEAN_TOP1, 100.0 * n_clean / n, None, {"n_examples": n}))
    if attack == FGSM:
        params = {"attack": FGSM, "eps": _num(eps), "n_examples": n, "mode": "white-box"}
    else:
        params = {"attack": PGD, "eps": _num(eps), "step_size": _num(step_size), "steps": int(steps),
                  "restarts": int(restarts), "n_examples": n, "mode": mode,
                  "source_run": source_run if source_model is not None else None}
    rows.append((attack, 100.0 * n_adv / n, None, params))
    return rows
