"""Clean test metrics: top-1, top-5, NLL and ECE (15 equal-width bins), all in percent but NLL."""

from __future__ import annotations

import torch

from msda_cli.robust.calibration import calibration_metrics


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    logits, labels = logits.float().cpu(), labels.cpu()
    k = min(5, logits.shape[1])
    topk = logits.topk(k, dim=1).indices
    hit = topk.eq(labels[:, None])
    return {
        "top1": 100.0 * hit[:, 0].float().mean().item(),
        "top5": 100.0 * hit.any(dim=1).float().mean().item(),
        **calibration_metrics(logits, labels),
    }


@torch.no_grad()
def predict(model, loader, accelerator=None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of the whole loader; with several processes, gathered without duplicates."""
    model.eval()
    all_logits, all_labels = [], []
    for x, y in loader:
        if accelerator is None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
        else:
            with accelerator.autocast():
                logits = model(x)
            logits, y = accelerator.gather_for_metrics((logits.float(), y))
        all_logits.append(logits.float().cpu())
        all_labels.append(y.cpu())
    return torch.cat(all_logits), torch.cat(all_labels)


def evaluate(model, loader, accelerator=None, device=None) -> dict[str, float]:
    logits, labels = predict(model, loader, accelerator, device)
    return classification_metrics(logits, labels)
