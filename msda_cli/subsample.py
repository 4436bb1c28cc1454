"""Uncertainty-based data subsampling (DCutMix paper §III-C; `msda subsample`).

Every training sample i (the anchor) is scored with a trained model: M DCutMix mixes in
which the anchor is image 0 (the outer ring) with a fixed share φ_0 (default 1/3) and K−1
partners share the rest by Dir(α·1_{K−1}) (default α = 2/9, K−1 = 2), at random box
positions. L_i = the M cross-entropy losses of the mixes against their soft labels (the
realized pixel shares). Measures per sample: mean(L_i), std(L_i) (population, ddof 0),
CV = std/mean (the paper's choice), or a seeded random number. Per class, t·N_class samples
are kept (rounded half up): the first ones in the chosen order (`top`) or evenly spaced
ranks along it (`interval`: ranks ⌊j·N_class/n⌋, j = 0..n−1).

Scoring is batched: a batch of B anchors becomes B·M mixed images in one forward pass. The
boxes come from the DCutMix mixer of `msda_cli.mixing.kimage` (per-sample mode, φ_0 fixed
through `lam=`), whose partners are replaced by other anchors of the same batch (never the
anchor itself). Anchors are visited in a seeded random order and split into near-equal
batches, so partners are random training samples; the scores depend on the seed and the
batch size, both stored with the subset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from msda_cli.checks import check_choice, check_float, check_int
from msda_cli.errors import MsdaError

from msda_cli.choices import MEASURES, ORDERS, SELECTS  # one source with --help


# ----- settings ---------------------------------------------------------------------------
@dataclass
class ScoreSettings:
    """How the anchored mixes are drawn (all stored with each subset)."""

    mixes: int = 10  # M
    partners: int = 2  # K − 1
    partner_alpha: float = 2 / 9
    anchor_share: float = 1 / 3
    batch_size: int = 32  # anchors per forward pass (B·M mixed images; small batches suit CPU caches)
    seed: int = 0

    def check(self) -> "ScoreSettings":
        check_int("--mixes", self.mixes, min=1)
        check_int("--partners", self.partners, min=1)
        check_float("--partner-alpha", self.partner_alpha, min=0, open="min")
        check_float("--anchor-share", self.anchor_share, min=0, max=1, open="both")
        check_int("--batch-size", self.batch_size, min=2, note="partners come from the batch")
        return self


@dataclass
class Selection:
    """One subset to build: a measure, an order, a selection rule and a ratio."""

    measure: str
    order: str | None  # None for `random` (order does not apply)
    select: str
    ratio: float


def parse_fraction(text, name: str) -> float:
    """'2/9', '0.25' or a number -> float; MsdaError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise MsdaError(f"{name} expects a number or a fraction such as 2/9, got {text!r}") from None


def parse_ratios(items: list[str]) -> list[float]:
    if not items:
        raise MsdaError("--ratio is required, e.g. --ratio 0.1 or --ratio 0.05,0.1,0.2")
    out = []
    for item in items:
        r = check_float("--ratio", parse_fraction(item, "--ratio"), min=0, max=1, open="min")
        if r not in out:
            out.append(r)
    return out


def _choices(items: list[str], choices, option: str, default: str) -> list[str]:
    items = [check_choice(option[2:], i.lower(), choices) for i in items] or [default]
    return list(dict.fromkeys(items))


def plan(ratios: list[str], measures: list[str], orders: list[str], selects: list[str]) -> list[Selection]:
    """Every (measure, order, select, ratio) combination; MsdaError on a bad value."""
    rs = parse_ratios(ratios)
    ms = _choices(measures, MEASURES, "--measure", "cv")
    os_ = _choices(orders, ORDERS, "--order", "high")
    ss = _choices(selects, SELECTS, "--select", "top")
    out, seen = [], set()
    for m in ms:
        for o in os_:
            for s in ss:
                for r in rs:
                    key = (m, None if m == "random" else o, s, r)
                    if key not in seen:
                        seen.add(key)
                        out.append(Selection(*key))
    return out


# ----- drawing and scoring the anchored mixes -----------------------------------------------
def anchor_mixer(settings: ScoreSettings):
    """The DCutMix mixer that builds the anchored mixes (one box chain per mix)."""
    from msda_cli.mixing.kimage import DCutMix

    return DCutMix(k=settings.partners + 1, alpha=settings.partner_alpha, mask_mode="sample")


def draw_anchor_mixes(n_anchors: int, image_shape: tuple, settings: ScoreSettings,
                      generator: torch.Generator | None = None, mixer=None) -> dict:
    """CPU draws for M mixes of each of `n_anchors` anchors (rows r = i·M + m of the mixed batch).

    Returns the DCutMix draw (`phi` with φ_0 = anchor share, `bounds` [B·M, K−1, 4] of the
    nested boxes) with `index` [K, B·M] replaced: row 0 the mix itself, row k the row of the
    first mix of another anchor (uniform over the other anchors of the batch).
    """
    if n_anchors < 2:
        raise MsdaError("scoring needs at least 2 anchors per batch (partners are other anchors)")
    mixer = mixer or anchor_mixer(settings)
    M, K = settings.mixes, settings.partners + 1
    n = n_anchors * M
    params = mixer.draw((n, *image_shape), generator=generator, lam=settings.anchor_share)
    anchor = torch.arange(n_anchors).repeat_interleave(M)  # [B·M]
    offset = 1 + torch.randint(0, n_anchors - 1, (K - 1, n), generator=generator)  # 1..B−1: never itself
    partner = (anchor.unsqueeze(0) + offset) % n_anchors  # [K−1, B·M]
    params["index"] = torch.cat([torch.arange(n).unsqueeze(0), partner * M], dim=0)
    params["partner"] = partner
    return params


def mix_anchors(x: torch.Tensor, y: torch.Tensor, num_classes: int, params: dict, settings: ScoreSettings,
                mixer=None):
    """The B·M mixed images and soft labels (a MixOutput) of anchors x [B,C,H,W], y [B]."""
    mixer = mixer or anchor_mixer(settings)
    M = settings.mixes
    rows = torch.arange(x.shape[0], device=x.device).repeat_interleave(M)
    return mixer.apply(x.index_select(0, rows), y.index_select(0, rows), num_classes, params)


@torch.inference_mode()
def mix_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, params: dict,
               settings: ScoreSettings, mixer=None) -> torch.Tensor:
    """[B, M] cross-entropy of each anchored mix against its soft label, one forward pass."""
    out = mix_anchors(x, y, num_classes, params, settings, mixer)
    logits = model(out.x).float()
    loss = -(out.y * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    return loss.view(x.shape[0], settings.mixes)


def anchor_batches(n: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """A seeded random order of 0..n−1 cut into ⌊n/batch⌋ near-equal batches: each holds at
    least `batch_size` anchors (all n when n < batch_size), so partners always exist."""
    order = torch.randperm(n, generator=generator).numpy()
    return np.array_split(order, max(1, n // batch_size))


def score_dataset(model: torch.nn.Module, dataset, num_classes: int, settings: ScoreSettings, device="cpu",
                  workers: int = 0, progress=None) -> np.ndarray:
    """[N, M] float64 losses of every sample of `dataset` (in data-set order)."""
    from torch.utils.data import DataLoader

    n = len(dataset)
    if n < 2:
        raise MsdaError(f"the training set has {n} sample(s); scoring needs at least 2")
    generator = torch.Generator().manual_seed(int(settings.seed))
    batches = anchor_batches(n, settings.batch_size, generator)
    loader = DataLoader(dataset, batch_sampler=[b.tolist() for b in batches], num_workers=workers,
                        pin_memory=torch.device(device).type == "cuda")
    mixer = anchor_mixer(settings)
    losses = torch.empty(n, settings.mixes, dtype=torch.float64)
    task = progress.add_task("scoring anchors", total=n) if progress is not None else None
    model.eval()
    for idx, (x, y) in zip(batches, loader):
        params = draw_anchor_mixes(len(idx), tuple(x.shape[1:]), settings, generator, mixer)
        x = x.to(device, non_blocking=True).float()
        y = y.to(device, non_blocking=True)
        losses[torch.as_tensor(idx)] = mix_losses(model, x, y, num_classes, params, settings, mixer).double().cpu()
        if task is not None:
            progress.advance(task, len(idx))
    return losses.numpy()


# ----- measures and selection ----------------------------------------------------------------
def measures(losses: np.ndarray) -> dict[str, np.ndarray]:
    """mean, std (ddof 0) and CV = std/mean (0 where the mean is 0) of each row of [N, M] losses."""
    losses = np.asarray(losses, dtype=np.float64)
    mean = losses.mean(axis=1)
    std = losses.std(axis=1)
    cv = np.divide(std, mean, out=np.zeros_like(std), where=mean > 0)
    return {"mean": mean, "std": std, "cv": cv}


def random_scores(n: int, seed: int) -> np.ndarray:
    """The `random` measure: n uniform numbers from a generator seeded by `seed`."""
    return np.random.default_rng([int(seed), 0x5AB5]).random(n)


def class_quota(ratio: float, n: int) -> int:
    """round(t·n), halves rounded up (a tiny tolerance absorbs float error such as 0.1·45)."""
    return int(math.floor(ratio * n + 0.5 + 1e-9))


def select_indices(score: np.ndarray, targets: np.ndarray, ratio: float, order: str | None = "high",
                   select: str = "top") -> np.ndarray:
    """Per class, round(t·N_class) indices by `score`; sorted ascending, int64."""
    score = np.asarray(score, dtype=np.float64)
    targets = np.asarray(targets)
    key = -score if order in ("high", None) else score
    chosen = []
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        n_c, k = len(members), class_quota(ratio, len(members))
        if k == 0:
            continue
        ranked = members[np.argsort(key[members], kind="stable")]
        if select == "top":
            chosen.append(ranked[:k])
        else:
            chosen.append(ranked[(np.arange(k) * n_c) // k])
    out = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return np.sort(out).astype(np.int64)


# ----- the command ---------------------------------------------------------------------------
@dataclass
class SubsampleResult:
    subsets: list  # Subset rows, in plan order
    scores: dict  # measure name -> [N] array
    losses: np.ndarray | None  # [N, M] or None when only `random` was asked and nothing exported


def check_export(path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise MsdaError(f"--export {path} is a directory; give a file name such as scores.csv")
    if not p.resolve().parent.is_dir():
        raise MsdaError(f"--export {path}: directory {p.resolve().parent} does not exist")
    return p


def write_scores(path: Path, targets: np.ndarray, losses: np.ndarray, stats: dict) -> None:
    import pandas as pd

    frame = pd.DataFrame({"index": np.arange(len(targets)), "label": targets,
                          "mean": stats["mean"], "std": stats["std"], "cv": stats["cv"]})
    for m in range(losses.shape[1]):
        frame[f"loss_{m}"] = losses[:, m]
    frame.to_csv(path, index=False, float_format="%.8g")


def subsample(store, run_id: str, selections: list[Selection], settings: ScoreSettings, export: str | None = None,
              data_dir: str | None = None, device: str | None = None, progress=None) -> SubsampleResult:
    """Score the run's training set once, then store one subset per selection.

    Every check (options, run, checkpoint, data, empty subsets, export path) runs before
    anything is written.
    """
    from msda_cli.engine.build import build_data
    from msda_cli.runs import load_run, pick_device
    from msda_cli.subsets import NewSubset, create_subsets

    settings.check()
    export_path = check_export(export)
    if device is None:
        device = pick_device()
    loaded = load_run(store, run_id, device=device, data_dir=data_dir)
    if not loaded.info.is_image:
        raise MsdaError(f"run {loaded.run.id} trains on {loaded.config.dataset}, not images; "
                        "DCutMix subsampling needs an image data set")
    train_set = build_data(loaded.config, train=True, augment=False)
    targets = train_set.targets.numpy()
    n = len(train_set)
    for sel in selections:
        counts = np.unique(targets, return_counts=True)[1]
        if sum(class_quota(sel.ratio, int(c)) for c in counts) == 0:
            raise MsdaError(f"--ratio {sel.ratio:g} keeps no sample of the {n} training samples "
                            f"(largest class: {counts.max()})")

    need_losses = export_path is not None or any(s.measure != "random" for s in selections)
    losses, scores = None, {}
    if need_losses:
        losses = score_dataset(loaded.model, train_set, loaded.info.num_classes, settings, device=device,
                               workers=loaded.config.data.workers, progress=progress)
        scores.update(measures(losses))
    if any(s.measure == "random" for s in selections):
        scores["random"] = random_scores(n, settings.seed)

    picked = [select_indices(scores[s.measure], targets, s.ratio, s.order, s.select) for s in selections]

    # ---- write: the export, then every subset's indices file and all rows at once ----
    if export_path is not None:
        write_scores(export_path, targets, losses, scores)
    base = {"mixes": settings.mixes, "partners": settings.partners, "partner_alpha": settings.partner_alpha,
            "anchor_share": settings.anchor_share, "batch_size": settings.batch_size,
            "source_epoch": loaded.epoch, "train_size": n}
    rows = create_subsets(store, loaded.run.id, [
        NewSubset(sel.measure, sel.ratio, settings.seed, indices, dict(base, order=sel.order, select=sel.select))
        for sel, indices in zip(selections, picked)])  # all of them or none
    return SubsampleResult(rows, scores, losses)
