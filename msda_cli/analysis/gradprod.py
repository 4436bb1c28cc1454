"""The partial gradient product of the unified-analysis paper (eq. 12, Figure 5):

    PartialGradProd(x, p) = max_v |∂_v f_θ(x) · ∂_{v+p} f_θ(x)|

over the pixels v with v + p inside the image, for every offset p = (dy, dx) with |dy|, |dx| ≤ m.

Choices (the paper leaves them open; each is an option and is stored with the values):

- f (`output`): the paper defines f_θ as "a twice differentiable prediction function f_θ(x)
  (e.g., a softmax output of a neural network)" (§3), and eq. (12) multiplies two scalars, so the
  default `prob` is the softmax probability of the true class, f(x) = softmax(z(x))_y. `logit`
  (z_y) is the reading under which cross-entropy is in the paper's loss class h(f) − y·f
  (f = logits, h = log-sum-exp); `loss` is the cross-entropy of x.
- channels (`channels`): Figure 5 plots a "pixel-wise partial gradient norm product", so the
  default `norm` takes ∂_v f as the L2 norm over the colour channels of pixel v (the mask, hence
  a_jk, is shared by the channels); `sum` sums them. One-channel images: both are |∂_v f|.
- images (`reduce`): `mean` averages the per-image maximum over the evaluated images; `max`
  takes the maximum over them too (the slides write max_k max_v |∂_v f(x_k) ∂_{v+p} f(x_k)|).
- gradients are taken with respect to pixel values in [0, 1] (before the model's normalization).

Each offset distance ‖p‖ gets the mean of the map over the offsets of that length; `normalized`
divides by the p = 0 value (max_v (∂_v f)²), as Figure 5 is normalized.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from msda_cli.analysis.coeffs import distance_groups
from msda_cli.checks import check_choice, check_int
from msda_cli.errors import MsdaError
from msda_cli.evaluation import check_subset, subset_loader
from msda_cli.metric_names import GRADPROD
from msda_cli.runs import load_run

from msda_cli.choices import CHANNELS, OUTPUTS, REDUCES  # one source with --help


@dataclass
class GradProd:
    run_id: str
    n_examples: int
    seed: int
    max_offset: int
    output: str
    channels: str
    reduce: str
    map: np.ndarray  # [2m+1, 2m+1], entry [dy + m, dx + m]
    distances: np.ndarray
    by_distance: np.ndarray
    params: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        zero = float(self.by_distance[0])
        return [{"distance": round(float(d), 4), "gradprod": float(v),
                 "normalized": float(v) / zero if zero > 0 else float("nan")}
                for d, v in zip(self.distances, self.by_distance)]

    def metric_rows(self) -> list[tuple]:
        """(name, value, epoch, params) rows for `store.add_metrics(run_id, "analysis", rows)`."""
        return [(GRADPROD, float(v), None, {**self.params, "offset_distance": round(float(d), 4)})
                for d, v in zip(self.distances, self.by_distance)]


def output_of(logits: torch.Tensor, y: torch.Tensor, output: str) -> torch.Tensor:
    """[B] scalar f per example: true-class softmax probability, true-class logit, or cross-entropy."""
    logits = logits.float()
    if output == "prob":
        return F.softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
    if output == "logit":
        return logits.gather(1, y[:, None])[:, 0]
    return F.cross_entropy(logits, y, reduction="none")


def pixel_gradients(model, x: torch.Tensor, y: torch.Tensor, output: str = "prob",
                    channels: str = "norm") -> torch.Tensor:
    """|∂_v f(x)| [B, H, W] per pixel: one backward pass for the batch (each f depends on its own x only)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        f = output_of(model(x), y, output)
        (grad,) = torch.autograd.grad(f.sum(), x)
    if channels == "norm":
        return grad.norm(dim=1)
    return grad.sum(dim=1).abs()


def max_products(a: torch.Tensor, max_offset: int) -> torch.Tensor:
    """[B, 2m+1, 2m+1]: max over valid v of a_v · a_{v+p} for a [B, H, W] >= 0.

    The products of offset −p are those of p (pair (v, v+p) is pair (w, w−p) with w = v + p), so only
    half of the offsets are computed and the other half mirrored.
    """
    B, H, W = a.shape
    m = max_offset
    out = torch.zeros(B, 2 * m + 1, 2 * m + 1, dtype=a.dtype, device=a.device)
    for dy in range(0, m + 1):
        for dx in range(-m, m + 1):
            if dy == 0 and dx < 0:
                continue
            y0, y1 = 0, H - dy
            x0, x1 = max(0, -dx), W - max(0, dx)
            prod = a[:, y0:y1, x0:x1] * a[:, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
            value = prod.amax(dim=(1, 2))
            out[:, dy + m, dx + m] = value
            out[:, m - dy, m - dx] = value
    return out


def check_request(n_examples: int, max_offset: int, batch_size: int, output: str, channels: str, reduce: str) -> None:
    check_subset(n_examples, batch_size)
    check_int("--max-offset", max_offset, min=0)
    check_choice("--output", output, OUTPUTS)
    check_choice("--channels", channels, CHANNELS)
    check_choice("--reduce", reduce, REDUCES)


def gradprod(store, run_id: str, n_examples: int = 256, max_offset: int = 8, batch_size: int = 128, seed: int = 0,
             output: str = "prob", channels: str = "norm", reduce: str = "mean", device: str = "cpu",
             data_dir: str | None = None) -> GradProd:
    """Compute the partial gradient product map of a stored run on a fixed seeded subset of its test set."""
    check_request(n_examples, max_offset, batch_size, output, channels, reduce)
    store.get_run(run_id)  # unknown id -> MsdaError before anything is loaded
    loaded = load_run(store, run_id, device=device, data_dir=data_dir)
    info = loaded.info
    if not info.is_image:
        raise MsdaError(f"run {loaded.run.id} trains on {info.name}, not images: the gradient product needs pixels")
    size = info.image_size
    check_int("--max-offset", max_offset, min=0, max=size - 1, note=f"the images are {size} px")
    loader, n = subset_loader(loaded.test_set, n_examples, seed, batch_size)
    k = 2 * max_offset + 1
    acc = torch.zeros(k, k, dtype=torch.float64, device=device)
    for x, y in loader:
        x, y = x.to(device).float(), y.to(device).long()
        a = pixel_gradients(loaded.model, x, y, output, channels)
        prods = max_products(a.double(), max_offset)
        acc = torch.maximum(acc, prods.amax(0)) if reduce == "max" else acc + prods.sum(0)
    result = (acc if reduce == "max" else acc / n).cpu().numpy()
    distances, avg = distance_groups(max_offset)
    params = {"n_examples": n, "seed": seed, "output": output, "channels": channels, "reduce": reduce,
              "max_offset": max_offset, "image_size": size}
    return GradProd(loaded.run.id, n, seed, max_offset, output, channels, reduce, result, distances,
                    result.ravel() @ avg, params)


def plot_gradprod(results: list[GradProd], labels: list[str], title: str, out, dpi: int | None = None) -> None:
    """One normalized map over offsets per run (as the paper's Figure 5, one colour scale) and their means
    by offset distance overlaid, each labelled by `labels`."""
    from msda_cli.plots import figure, integer_ticks

    def normalized(res, values):
        zero = res.map[res.max_offset, res.max_offset]
        return values / zero if zero > 0 else values

    maps = [normalized(res, res.map) for res in results]
    low, high = min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)
    with figure(out, (2.4 * len(results) + 3.2, 2.8), dpi) as fig:
        axes = fig.subplots(1, len(results) + 1, squeeze=False, width_ratios=[1] * len(results) + [1.4])[0]
        for ax, res, values, label in zip(axes, results, maps, labels):
            m = res.max_offset
            im = ax.imshow(values, origin="lower", extent=(-m - 0.5, m + 0.5, -m - 0.5, m + 0.5), vmin=low, vmax=high)
            ax.set_title(label)
            ax.set_xlabel("dx (px)")
            integer_ticks(ax)
        axes[0].set_ylabel("dy (px)")
        fig.colorbar(im, ax=list(axes[:-1]), fraction=0.046, pad=0.02, label="product / p = 0")
        curve = axes[-1]
        for res, label in zip(results, labels):
            curve.plot(res.distances, normalized(res, res.by_distance), marker="o", label=label)
        curve.set_xlabel("offset distance ‖p‖ (px)")
        curve.set_ylabel("normalized gradient product")
        curve.legend()
        first = results[0]
        fig.suptitle(f"{title}: partial gradient product (f = {first.output}, {first.reduce} over "
                     f"{first.n_examples} test images)")
