"""The papers' mixed-sample figure (Figure 3 of the unified-analysis paper): one row per method
with the source images, the mixed image and its mask.

Two-image methods show source A, source B, the mix and the mask M (weight of A). K-image
methods show their K sources, the mix and a map with one colour per source (the colours frame
the source panels). Methods that need a model show their input-level mix (MixupE: its Mixup
mix; Manifold Mixup: mixing at the input, one of the layers it chooses from; PuzzleMix and
Co-Mixup: their mix under the spectral-residual saliency, in place of the input gradient); the
row title says so. `all` is every method in the papers' order (the registration order: Vanilla first).
Each mix panel names the λ it realizes (a clipped box's area, not the λ asked for). Figures
are drawn in msda_cli.plots's style, as PNG, PDF or SVG after the file's suffix.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from msda_cli.checks import check_float
from msda_cli.errors import MsdaError

PREVIEW_SIZE = 64  # digits are upsampled to this size
MAX_SIDE = 256  # user images are resized so that their longer side is at most this
NOTES = {
    "mixupe": "its Mixup mix (the extra term needs the model)",
    "manifold-mixup": "input-level mix (hidden layers need the model)",
    "vanilla": "no mixing",
    "cutout": "no partner: the box is zeroed",
    "puzzlemix": "spectral-residual saliency",
    "comixup": "spectral-residual saliency",
}
NO_PARTNER = ("vanilla", "cutout")


def _digits_images(count: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    from msda_cli.data import build_dataset

    ds = build_dataset("digits", train=False, augment=False, image_size=PREVIEW_SIZE)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()
    images, names = [], []
    for cls in order[:count]:
        i = int((ds.targets == cls).nonzero()[0])
        images.append(ds[i][0])
        names.append(f"digit {cls}")
    return torch.stack(images), names


def _load_images(paths: list[Path]) -> tuple[torch.Tensor, list[str]]:
    from PIL import Image

    if len(paths) < 2:
        raise MsdaError("the preview needs at least two images")
    tensors, size = [], None
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise MsdaError(f"image not found: {p}")
        try:
            img = Image.open(p).convert("RGB")
        except Exception as e:  # PIL raises several types for bad files
            raise MsdaError(f"cannot read image {p}: {e}") from None
        if size is None:
            w, h = img.size
            scale = min(1.0, MAX_SIDE / max(w, h))
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
        img = img.resize(size, Image.BILINEAR)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size[1], size[0], 3)
        tensors.append(t.permute(2, 0, 1).float() / 255.0)
    return torch.stack(tensors), [Path(p).name for p in paths]


def _resolve(methods: list[str]) -> list[str]:
    from msda_cli.mixing import MIXERS

    names: list[str] = []
    for m in methods:
        if m == "all":
            names.extend(list(MIXERS.labels) + sorted(set(MIXERS) - set(MIXERS.labels)))
        else:
            MIXERS.lookup(m)  # MsdaError listing the valid names
            names.append(m)
    if not names:
        raise MsdaError("no method to preview")
    return list(dict.fromkeys(names))


def _hparams_for(name: str, hparams: dict | None) -> dict:
    """Per-method dict ({method: {...}}) or one flat dict applied where the method accepts the key."""
    from msda_cli.mixing import method_hparams

    if not hparams:
        return {}
    if name in hparams and isinstance(hparams[name], dict):
        return dict(hparams[name])
    valid = method_hparams(name)
    return {k: v for k, v in hparams.items() if not isinstance(v, dict) and k in valid}


def _colour_map(colours: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[H, W, 3] image: per-pixel blend of source colours by weights [K, H, W]."""
    return torch.einsum("khw,kc->hwc", weights, colours).clamp(0, 1)


def render_preview(methods: list[str], out: Path, lam: float | None = 0.65, images: list[Path] | None = None,
                   seed: int = 0, hparams: dict | None = None, dpi: int | None = None) -> Path:
    """Render the mixed-sample figure for `methods` (["all"] = every registered method) to `out`.

    `lam` fixes λ (None: drawn from the method's distribution with `seed`); `images` are user
    images (at least two; reused in turn when a K-image method needs more), else digits of
    different classes; `hparams` as for `build_mixer`, per method ({name: {...}}) or flat.
    """
    from msda_cli.mixing import MIXERS, build_mixer
    from msda_cli.plots import figure

    names = _resolve(methods)
    if lam is not None:
        check_float("lam", lam, min=0, max=1)
    mixers = {n: build_mixer(n, **_hparams_for(n, hparams)) for n in names}
    max_k = max(getattr(m, "k", 2) for m in mixers.values())
    if images:
        pool, labels = _load_images(list(images))
    else:
        pool, labels = _digits_images(min(max_k, 10), seed)
    palette = torch.tensor([[0.12, 0.47, 0.71], [1.0, 0.5, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16],
                            [0.58, 0.4, 0.74], [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.5, 0.5, 0.5],
                            [0.74, 0.74, 0.13], [0.09, 0.75, 0.81]])

    ncols = max_k + 2
    out = Path(out)
    with figure(out, (1.6 * ncols, 1.75 * len(names) + 0.3), dpi) as fig:
        _draw(fig, names, mixers, pool, labels, palette, ncols, lam, seed, MIXERS)
    return out


def _draw(fig, names, mixers, pool, labels, palette, ncols, lam, seed, registry) -> None:
    """One row per method on `fig`: its sources, the mix (titled with the λ it realizes) and its mask."""
    axes = fig.subplots(len(names), ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)

    def show(ax, img, title=None, frame=None):
        if img.dim() == 3 and img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        elif img.dim() == 3:
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        else:
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if title:
            ax.set_title(title, fontsize=8)
        ax.set_frame_on(True)
        for spine in ax.spines.values():
            spine.set_visible(True)  # the figure style hides top and right: a white mask would lose its edge
            spine.set_edgecolor("0.5" if frame is None else frame.tolist())
            spine.set_linewidth(0.8 if frame is None else 3)

    for row, name in enumerate(names):
        mixer = mixers[name]
        k = getattr(mixer, "k", 2)
        sel = [i % pool.shape[0] for i in range(k)]
        x = pool[sel]
        y = torch.arange(k)
        g = torch.Generator().manual_seed(seed)
        params = mixer.draw(tuple(x.shape), generator=g, lam=lam)
        if "index" in params and name not in NO_PARTNER:
            # sample 0 mixes source 0 (own) with sources 1, …, K−1
            params["index"] = torch.stack([(torch.arange(k) + j) % k for j in range(params["index"].shape[0])])
        res = mixer.apply(x, y, k, params)
        axes_row = axes[row]
        realized = float(res.lam[0])
        note = NOTES.get(name)
        head = registry.label(name) + (f" ({note})" if note else "")
        axes_row[0].set_ylabel(head if len(head) < 28 else head.replace(" (", "\n("), fontsize=8)
        axes_row[0].set_frame_on(False)
        n_src = 1 if name in NO_PARTNER else k
        for j in range(n_src):
            letter = chr(ord("A") + j)
            frame = palette[j % len(palette)] if k > 2 else None
            show(axes_row[j], x[j], f"{letter}: {labels[sel[j] % len(labels)]}", frame)
        if name in NO_PARTNER:
            axes_row[1].text(0.5, 0.5, "(no partner)", ha="center", va="center", fontsize=8,
                             transform=axes_row[1].transAxes)
        mix_col, mask_col = max(n_src, 2), max(n_src, 2) + 1
        if name == "vanilla":
            show(axes_row[mix_col], res.x[0], "unmixed: λ = 1")
        elif res.shares is not None and k > 2:
            shares = ", ".join(f"{chr(ord('A') + j)} {float(res.shares[0, j]):.2f}" for j in range(k))
            show(axes_row[mix_col], res.x[0], f"mix: {shares}")
        else:
            show(axes_row[mix_col], res.x[0], f"mix: λ = {realized:.2f}")
        if name == "vanilla":
            pass
        elif res.mask is not None:
            show(axes_row[mask_col], res.mask[0, 0].float(), "mask M (weight of A)")
        else:
            colours = palette[torch.arange(k) % len(palette)]
            if res.sources is not None:
                weights = F.one_hot(res.sources[0, 0].long(), k).permute(2, 0, 1).float()
            else:
                H, W = x.shape[-2:]
                weights = res.shares[0].view(k, 1, 1).expand(k, H, W).float()
            show(axes_row[mask_col], _colour_map(colours, weights).permute(2, 0, 1), "sources")
    title = "Mixed samples" + (f", λ = {float(lam):g} asked" if lam is not None else f", λ drawn (seed {seed})")
    title += " (each mix is labelled with the λ it realizes)"
    fig.suptitle(title, fontsize=10)
