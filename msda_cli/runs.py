"""A stored run opened for measuring: its config, its model from the checkpoint (fp32, eval mode)
and its test split. `msda eval`, `msda robust`, `msda analyze gradprod|landscape` and
`msda subsample` start here, on the device `pick_device()` chooses.

It sits above `engine` (it builds data and model with `engine.build` and reads the checkpoint
with `engine.checkpoint`) and below the commands, so none of them reaches into the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from msda_cli.config import Config, validate
from msda_cli.data import DATASETS, DatasetInfo, LabeledDataset, dataset_options
from msda_cli.engine.build import build_data, build_network
from msda_cli.engine.checkpoint import load_checkpoint, run_checkpoint
from msda_cli.errors import MsdaError
from msda_cli.store.tables import Run


def pick_device() -> str:
    """Where stored runs are measured: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class LoadedRun:
    """A stored run ready for evaluation: fp32 model in eval mode on `device`, and its test data."""

    run: Run
    config: Config
    model: torch.nn.Module
    info: DatasetInfo
    test_set: LabeledDataset
    epoch: int


def load_run(store, run_id: str, device="cpu", data_dir: str | None = None, dataset: str | None = None) -> LoadedRun:
    """Load a run's model from its checkpoint and its test split (`dataset` to evaluate elsewhere)."""
    run = store.get_run(run_id)
    checkpoint = run_checkpoint(store, run)  # the file, even where a kill left the row behind it
    if checkpoint is None:
        raise MsdaError(f"run {run.id} has no checkpoint (status {run.status}); train or resume it first")
    cfg = validate(json.loads(run.config), source=f"run {run.id} config")
    if data_dir is not None:
        cfg.data.root = data_dir
    if dataset is not None and dataset != cfg.dataset:
        DATASETS.lookup(dataset)
        accepted = dataset_options(dataset)  # keep the options (image size ...) the other set takes
        cfg.dataset = dataset
        cfg.data.options = {k: v for k, v in cfg.data.options.items() if k in accepted}
    state = load_checkpoint(checkpoint)
    test_set = build_data(cfg, train=False)
    model = build_network(cfg, test_set.info)
    try:
        model.load_state_dict(state.get("ema", state["model"]))  # a run with `ema` is its EMA model
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        kinds = ("size mismatch", "Missing key", "Unexpected key")
        detail = next((ln for ln in lines if ln.startswith(kinds)), lines[0])
        raise MsdaError(f"checkpoint of run {run.id} does not fit {cfg.arch} on {cfg.dataset} "
                        f"({test_set.info.in_chans} channels, {test_set.info.num_classes} classes): {detail}") from None
    model.to(device).float().eval()
    return LoadedRun(run, cfg, model, test_set.info, test_set, int(state.get("epoch", -1)))
