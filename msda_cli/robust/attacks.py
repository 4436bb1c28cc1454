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

from msda_cli.errors import MsdaError


class AttackResult(NamedTuple):
    x_adv: torch.Tensor  # adversarial inputs, within the ε-ball of x and [0, 1]
    fooled: torch.Tensor  # bool [B]: the crafting model misclassifies the kept point


def check_settings(eps: float, steps: int = 1, step_size: float = 1.0, restarts: int = 1) -> None:
    """MsdaError for a setting no attack can use."""
    if eps is None or not eps >= 0:
        raise MsdaError(f"--eps must be >= 0 in 0-255 pixel units (got {eps})")
    if int(steps) != steps or steps < 1:
        raise MsdaError(f"--steps must be an integer >= 1 (got {steps})")
    if step_size is None or not step_size > 0:
        raise MsdaError(f"--step-size must be > 0 in 0-255 pixel units (got {step_size})")
    if int(restarts) != restarts or restarts < 1:
        raise MsdaError(f"--restarts must be an integer >= 1 (got {restarts})")


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
    check_settings(eps)
    x = x.detach().float()
    _, grad = input_gradient(model, x, y)
    return (x + (eps / 255.0) * grad.sign()).clamp_(0.0, 1.0).detach()


def _uniform(shape, eps: float, generator: torch.Generator | None, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=gen_device)
    return ((2.0 * u - 1.0) * eps).to(device)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8, step_size: float = 2,
        steps: int = 10, restarts: int = 1, generator: torch.Generator | None = None,
        per_iterate: bool = True, drop_broken: bool = True) -> AttackResult:
    """PGD-L∞ with random start and restarts; see the module docstring for the bookkeeping."""
    check_settings(eps, steps, step_size, restarts)
    eps, alpha = eps / 255.0, step_size / 255.0
    x, y = x.detach().float(), y.detach()
    n = len(x)
    x_adv = x.clone()
    if per_iterate:  # the clean point is the first point visited
        with torch.no_grad():
            fooled = model(x).argmax(dim=1).ne(y)
    else:
        fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
    drop = per_iterate and drop_broken
    for _ in range(int(restarts)):
        noise = _uniform(x.shape, eps, generator, x.device)  # whole batch: same draws whatever is active
        idx = (~fooled).nonzero().squeeze(1) if drop else torch.arange(n, device=x.device)
        if len(idx) == 0:
            continue
        x0, yy = x[idx], y[idx]
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
            xt = xt + alpha * grad.sign()
            xt = torch.minimum(torch.maximum(xt, x0 - eps), x0 + eps).clamp_(0.0, 1.0)
            if drop:
                keep = ~wrong
                idx, x0, yy, xt = idx[keep], x0[keep], yy[keep], xt[keep]
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
