"""Checkpoints: one dict per run folder, written atomically, read with weights_only=True.

The dict holds everything a resumed run needs: model, optimizer and scheduler states (and `ema`, the
averaged weights of a run with `ema` > 0, which eval and robust measure), the epoch
just finished, the RNG states, the resolved config, and every epoch's metric rows so far with the
training time, so that the checkpoint and the rows of its epochs form one recoverable unit (the
training loop reconciles the store with the file on resume).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import re
import warnings
from pathlib import Path

import torch

from msda_cli.durable import fsync_dir, write_synced
from msda_cli.errors import MsdaError
from msda_cli.faults import declare, fault_point

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"  # checkpoint_keep best|both: model, epoch, config, test_top1, score, metrics of the best epoch
RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch")  # what a resumed run reads
declare("checkpoint.tmp_written", "checkpoint.renamed")


def rng_state() -> dict:
    """The RNG states at the end of the epoch, kept in the checkpoint for inspection; a resumed
    run does not need them, since every epoch re-seeds from (seed, epoch, rank)."""
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def run_checkpoint(store, run) -> Path | None:
    """A run's checkpoint: the file in its run folder, which is the truth (a kill between the rename
    and the database write leaves the row's `checkpoint` one epoch behind, or empty), or its best.pt
    (checkpoint_keep: best keeps only that one); else the row's. A finished `best` run is its best.pt even where
    a kill after the finish left checkpoint.pt beside it."""
    keep_best = run.status == "finished" and json.loads(run.config or "{}").get("checkpoint_keep") == "best"
    for name in (BEST_NAME, CHECKPOINT_NAME) if keep_best else (CHECKPOINT_NAME, BEST_NAME):
        path = store.run_dir(run.id) / name
        if path.is_file():
            return path
    return Path(run.checkpoint) if run.checkpoint else None


def best_so_far(path: Path) -> tuple[float, list]:
    """The score of the best epoch so far (its validation top-1 where a validation split exists, else its test
    top-1) and its final metric rows, from its checkpoint `path` (best.pt); (−inf, []) before the first."""
    if not Path(path).is_file():
        return -math.inf, []
    state = load_checkpoint(path, keys=("test_top1",))
    return float(state.get("score", state["test_top1"])), [tuple(row) for row in state.get("metrics", [])]


def temp_path(path: Path) -> Path:
    """Where `save_checkpoint` writes before the rename (`checkpoint.tmp`)."""
    return Path(path).with_suffix(".tmp")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a temporary file, fsync it, rename it over `path`, fsync the folder: after a kill or a
    power cut the folder holds the previous checkpoint or the new one, never a part of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write_synced(tmp, lambda f: torch.save(state, f), mode="wb")
        fault_point("checkpoint.tmp_written")
        os.replace(tmp, path)
    except BaseException:  # a full disk or a signal: no partial file stays behind
        tmp.unlink(missing_ok=True)
        raise
    fault_point("checkpoint.renamed")
    fsync_dir(path.parent)


def load_checkpoint(path: Path | str, keys: tuple[str, ...] = ("model",)) -> dict:
    """The checkpoint dict, read with weights_only=True; MsdaError (one line) unless it holds `keys`."""
    path = Path(path)
    if not path.is_file():
        raise MsdaError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's problem
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, unsafe pickle ...
        raise MsdaError(f"checkpoint {path} {_unreadable(e)}") from None
    missing = [key for key in keys if not isinstance(state, dict) or key not in state]
    if missing:
        raise MsdaError(f"checkpoint {path} is not an msda checkpoint (no {' or '.join(missing)} state)")
    return state


def _unreadable(e: Exception) -> str:
    """Why torch.load failed, as the end of one sentence that starts "checkpoint PATH"."""
    text = str(e)
    if isinstance(e, EOFError):
        return "cannot be read: it is empty or cut short"
    if isinstance(e, pickle.UnpicklingError):
        found = re.search(r"(Trying to load unsupported [^\n]*|Unsupported [^\n]*)", text)
        detail = found.group(1).strip().rstrip(".") if found else "refused by the safe loader"
        what = ("it holds objects other than tensors and plain containers" if "global" in detail.lower()
                else "it is not a file torch.save wrote")
        return (f"cannot be read: {what} ({detail}); msda reads checkpoints with weights_only=True, "
                "which never runs code from a file")
    first = re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0].rstrip(".") if text.strip() else ""
    if "PytorchStreamReader" in text:
        return f"cannot be read: it is truncated or damaged ({first})"
    return f"cannot be read ({type(e).__name__}{': ' + first if first else ''})"
