"""Checkpoints: one dict per run folder, written atomically, read with weights_only=True.

The dict holds everything a resumed run needs: model, optimizer and scheduler states,
the epoch just finished, the RNG states, and the resolved config.
"""

from __future__ import annotations

import os
import random
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
