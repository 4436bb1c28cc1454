"""The 1-D loss landscape of a trained run (Li et al., NeurIPS 2018, "Visualizing the Loss
Landscape of Neural Nets", §4–5): test loss and top-1 of θ + t·d for t on an evenly spaced grid
in [−T, T], where d is a random Gaussian direction, filter-normalized.

Choices (each is stored with the values or is a documented convention):

- filter normalization: for every weight tensor of a convolution or linear layer, each output
  filter (d[i], the i-th slice along dim 0) is rescaled to the norm of θ's filter θ[i], so
  ‖d[i]‖ = ‖θ[i]‖; biases, BatchNorm affine parameters and every other parameter get d = 0 (the
  paper's choice of ignoring them, "ignore biasbn" in its code); buffers (BatchNorm running
  statistics, the input normalization) are never perturbed.
- BatchNorm stays in eval mode: the perturbed network normalizes with the running statistics of θ,
  as most reproductions do (the paper's code evaluates in eval mode too); they are not re-estimated
  for each θ + t·d.
- directions are drawn on the CPU from one generator seeded with `seed`, direction k after
  directions 0 … k − 1, so direction k is the same whatever the number of directions or device.
- t: t_i = T (2i − (P − 1)) / (P − 1), i = 0 … P − 1, exactly symmetric; an odd P contains t = 0
  exactly, which reproduces the trained model's loss.
- the loss is the mean cross-entropy over a fixed seeded subset of the test split (the same subset
  for every t and direction); top-1 is a percentage.

The model is never modified: every θ + t·d is a fresh parameter dict evaluated through
`torch.func.functional_call`, so the stored weights are the same before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from msda_cli.checks import check_float, check_int
from msda_cli.evaluation import check_subset, eval_mode, subset_loader
from msda_cli.metric_names import LANDSCAPE_LOSS, LANDSCAPE_TOP1
from msda_cli.runs import load_run

FILTER_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass
class Landscape:
    run_id: str
    n_examples: int
    seed: int
    span: float
    points: int
    t: np.ndarray  # [P]
    loss: np.ndarray  # [N, P] mean cross-entropy per direction and t
    top1: np.ndarray  # [N, P] percent
    params: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One printed row per t: the mean over directions."""
        return [{"t": float(t), "loss": float(loss), "top1": float(top1)}
                for t, loss, top1 in zip(self.t, self.loss.mean(0), self.top1.mean(0))]

    def metric_rows(self) -> list[tuple]:
        """(name, value, epoch, params) rows for `store.add_metrics(run_id, "analysis", rows)`:
        `landscape_loss` and `landscape_top1` for every (direction, t)."""
        out = []
        for k in range(self.loss.shape[0]):
            for j, t in enumerate(self.t):
                params = {**self.params, "t": float(t), "direction": k}
                out.append((LANDSCAPE_LOSS, float(self.loss[k, j]), None, params))
                out.append((LANDSCAPE_TOP1, float(self.top1[k, j]), None, params))
        return out


def check_request(span: float, points: int, directions: int, n_examples: int, batch_size: int) -> None:
    check_float("--span", span, min=0, open="min")
    check_int("--points", points, min=3)
    check_int("--directions", directions, min=1)
    check_subset(n_examples, batch_size)


def grid(span: float, points: int) -> np.ndarray:
    """t_i = T (2i − (P − 1)) / (P − 1): symmetric, with t = 0 exactly when P is odd."""
    i = np.arange(points)
    return span * (2 * i - (points - 1)) / (points - 1)


def filter_weights(model: nn.Module) -> set[str]:
    """Names (as in `named_parameters`) of the convolution and linear weight tensors."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, FILTER_LAYERS) and getattr(module, "weight", None) is not None:
            names.add(f"{prefix}.weight" if prefix else "weight")
    return names


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A Gaussian direction d over the model's parameters (fp32, on the CPU) with ‖d[i]‖ = ‖θ[i]‖
    for every output filter i of every conv / linear weight, and d = 0 for every other parameter."""
    weights = filter_weights(model)
    d = {}
    for name, p in model.named_parameters():  # fixed order: the same draws for the same seed
        theta = p.detach().float().cpu()
        if name not in weights:
            d[name] = torch.zeros_like(theta)
            continue
        g = torch.randn(theta.shape, generator=generator, dtype=torch.float32)
        g_norm = g.flatten(1).norm(dim=1)
        t_norm = theta.flatten(1).norm(dim=1)
        scale = torch.where(g_norm > 0, t_norm / g_norm.clamp_min(1e-30), torch.zeros_like(g_norm))
        d[name] = g * scale.view(-1, *([1] * (theta.dim() - 1)))
    return d


@torch.no_grad()
def evaluate(model: nn.Module, params: dict[str, torch.Tensor], batches: list) -> tuple[float, float]:
    """Mean cross-entropy and top-1 (%) of `model` with `params` in place of its parameters, over
    pre-loaded (x, y) batches; buffers (BatchNorm running statistics) are the model's own."""
    from torch.func import functional_call

    total, correct, n = 0.0, 0, 0
    for x, y in batches:
        logits = functional_call(model, params, (x,)).float()
        total += float(F.cross_entropy(logits.double(), y, reduction="sum"))
        correct += int(logits.argmax(1).eq(y).sum())
        n += len(y)
    return total / n, 100.0 * correct / n


def sweep(model: nn.Module, batches: list, span: float, points: int, directions: int, seed: int,
          device="cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t [P], loss [N, P] and top-1 [N, P] of θ + t·d for `directions` directions d drawn from a
    generator seeded with `seed`; BatchNorm in eval mode; the model's weights are left as they were."""
    theta = {name: p.detach() for name, p in model.named_parameters()}
    ts = grid(span, points)
    generator = torch.Generator().manual_seed(int(seed))
    loss = np.zeros((directions, points))
    top1 = np.zeros((directions, points))
    with eval_mode(model):
        for k in range(directions):
            d = {name: v.to(device) for name, v in filter_normalized_direction(model, generator).items()}
            for j, t in enumerate(ts):
                params = {name: theta[name] + float(t) * d[name] for name in theta}
                loss[k, j], top1[k, j] = evaluate(model, params, batches)
    return ts, loss, top1


def landscape(store, run_id: str, span: float = 1.0, points: int = 21, directions: int = 1, seed: int = 0,
              n_examples: int = 512, batch_size: int = 256, device: str = "cpu",
              data_dir: str | None = None) -> Landscape:
    """Loss and top-1 of θ + t·d on a fixed seeded test subset (`select_indices(n, n_examples, seed)`),
    for `directions` filter-normalized random directions d and `points` values of t in [−span, span]."""
    check_request(span, points, directions, n_examples, batch_size)
    store.get_run(run_id)  # unknown id -> MsdaError before anything is loaded
    loaded = load_run(store, run_id, device=device, data_dir=data_dir)
    loader, n = subset_loader(loaded.test_set, n_examples, seed, batch_size)
    batches = [(x.to(device).float(), torch.as_tensor(y).to(device).long()) for x, y in loader]
    ts, loss, top1 = sweep(loaded.model, batches, span, points, directions, seed, device)
    params = {"seed": seed, "span": span, "points": points, "n_examples": n}
    return Landscape(loaded.run.id, n, seed, span, points, ts, loss, top1, params)


def plot_landscape(results: list[Landscape], labels: list[str], title: str, out, dpi: int | None = None) -> None:
    """Test loss against t, one colour per run (each direction thin, their mean bold), and the mean top-1."""
    from msda_cli.plots import figure

    with figure(out, (6.4, 2.8), dpi) as fig:
        loss_ax, top1_ax = fig.subplots(1, 2)
        for i, (res, label) in enumerate(zip(results, labels)):
            colour = f"C{i % 10}"
            if res.loss.shape[0] > 1:
                for curve in res.loss:
                    loss_ax.plot(res.t, curve, color=colour, alpha=0.3, linewidth=0.6)
            loss_ax.plot(res.t, res.loss.mean(0), color=colour, marker="o", label=label)
            top1_ax.plot(res.t, res.top1.mean(0), color=colour, marker="o", label=label)
        for ax, name in ((loss_ax, "test loss"), (top1_ax, "test top-1 (%)")):
            ax.set_xlabel("t  (θ + t·d, d filter-normalized)")
            ax.set_ylabel(name)
        fig.legend(*loss_ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(len(results), 4))
        first = results[0]
        count = first.loss.shape[0]
        fig.suptitle(f"{title}: 1-D loss landscape ({count} direction{'s' if count > 1 else ''}, "
                     f"{first.n_examples} test examples)")
