"""Durable file writes: a file is fsynced before anything names it, and a folder after a file in it
is created, renamed or removed, so that after a power cut the names on disk match what the
store says (the checkpoint of a run, the indices files of subsets)."""

from __future__ import annotations

import os
from pathlib import Path


def write_synced(path: Path, write, mode: str = "xb") -> None:
    """Open `path` (by default: create it, failing if it exists), `write(file)`, flush and fsync."""
    with open(path, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    """Make the creations, renames and removals inside `folder` durable (a no-op where the file
    system cannot open or fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the change itself has happened
        pass
    finally:
        os.close(fd)
