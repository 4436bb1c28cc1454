"""Checkpoints: one dict per run folder, written atomically, read with weights_only=True.

The dict holds everything a resumed run needs: model, optimizer and scheduler states,
the epoch just finished, the RNG states, and the resolved config.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from msda_cli.errors import MsdaError

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict:
    """The RNG states at the end of the epoch, kept in the checkpoint for inspection; a resumed
    run does not need them, since every epoch re-seeds from (seed, epoch, rank)."""
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(path: Path, state: dict) -> None:
    """Write to a temporary file and rename, so a kill mid-write leaves the previous checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MsdaError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, unsafe pickle ...
        raise MsdaError(f"checkpoint {path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise MsdaError(f"checkpoint {path} is not an msda checkpoint (no model state)")
    return state


@dataclass
class LoadedRun:
    """A stored run ready for evaluation: fp32 model in eval mode on `device`, and its test data."""

    run: object
    config: object  # msda_cli.config.Config
    model: torch.nn.Module
    info: object  # DatasetInfo
    test_set: object  # LabeledDataset
    epoch: int


def load_run(store, run_id: str, device="cpu", data_dir: str | None = None, dataset: str | None = None) -> LoadedRun:
    """Load a run's model from its checkpoint and its test split (`dataset` to evaluate elsewhere)."""
    from msda_cli.config import validate
    from msda_cli.engine.build import build_data, build_network

    run = store.get_run(run_id)
    if not run.checkpoint:
        raise MsdaError(f"run {run.id} has no checkpoint (status {run.status}); train or resume it first")
    cfg = validate(json.loads(run.config), source=f"run {run.id} config")
    if data_dir is not None:
        cfg.data.root = data_dir
    if dataset is not None and dataset != cfg.dataset:
        from msda_cli.data import DATASETS, dataset_options

        DATASETS.lookup(dataset)
        accepted = dataset_options(dataset)  # keep the options (image size ...) the other set takes
        cfg.dataset = dataset
        cfg.data.options = {k: v for k, v in cfg.data.options.items() if k in accepted}
    state = load_checkpoint(run.checkpoint)
    test_set = build_data(cfg, train=False)
    model = build_network(cfg, test_set.info)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if ln.startswith(("size mismatch", "Missing key", "Unexpected key"))), lines[0])
        raise MsdaError(f"checkpoint of run {run.id} does not fit {cfg.arch} on {cfg.dataset} "
                        f"({test_set.info.in_chans} channels, {test_set.info.num_classes} classes): {detail}") from None
    model.to(device).float().eval()
    return LoadedRun(run, cfg, model, test_set.info, test_set, int(state.get("epoch", -1)))
