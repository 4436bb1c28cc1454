"""The life cycle of a data subset: created by `msda subsample`, trained on with `msda train
--subset`, deleted with its source run by `msda runs rm`.

A subset is a row in the store (source run, measure, ratio, seed, size, settings) and a
NumPy file of sorted int64 training-set indices, `<results>/subsets/<subset id>.npy`, that
the row names. The files are written before their rows, so a row always names a complete file;
a file is deleted before its row, so an interrupted `runs rm` leaves a row that the next one
deletes, never a file that no row names. Reports read the rows through `Store.list_subsets()`.

One `msda subsample` call creates all its subsets or none (`create_subsets`). Under an exclusive
lock on `subsets/.lock` (flock: the kernel releases it when its process dies, even by SIGKILL) it
writes a journal naming the new ids, then every indices file, then all rows in one transaction,
then removes the journal. A journal found while holding the lock was left by a killed call: its
files without rows (killed before the commit) are deleted, files with rows (killed after) kept.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msda_cli.durable import fsync_dir, write_synced
from msda_cli.errors import MsdaError
from msda_cli.faults import declare, fault_point
from msda_cli.store import Store, new_id
from msda_cli.store.tables import Subset

JOURNAL_PREFIX = ".pending-"
declare("subsets.file_written", "subsets.before_commit", "subsets.committed")


@dataclass
class NewSubset:
    """One subset to create: how it was selected, and the training-set indices it keeps."""

    measure: str
    ratio: float
    seed: int
    indices: np.ndarray
    params: dict


def create_subsets(store: Store, source_run_id: str, subsets: list[NewSubset]) -> list[Subset]:
    """Write every indices file, then all rows at once; returns the rows (in order). An error or a
    kill at any moment leaves all of them or none (see the module docstring)."""
    folder = store.results_dir / "subsets"
    folder.mkdir(parents=True, exist_ok=True)
    ids = [new_id() for _ in subsets]
    paths = [folder / f"{subset_id}.npy" for subset_id in ids]
    with _writer_lock(folder):
        recover(store, folder)
        journal = folder / f"{JOURNAL_PREFIX}{new_id()}"
        try:
            write_synced(journal, lambda f: f.write("".join(f"{i}\n" for i in ids).encode()))
            fsync_dir(folder)
            for path, new in zip(paths, subsets):
                write_synced(path, lambda f, new=new: np.save(f, np.asarray(new.indices, dtype=np.int64)))
                fault_point("subsets.file_written")
            fsync_dir(folder)
            fault_point("subsets.before_commit")
            rows = store.add_subsets([
                dict(id=subset_id, source_run_id=source_run_id, measure=new.measure, ratio=float(new.ratio),
                     seed=int(new.seed), size=int(len(new.indices)), indices_path=str(path.resolve()),
                     params=json.dumps(new.params, sort_keys=True))
                for subset_id, path, new in zip(ids, paths, subsets)])
        except BaseException:  # files whose rows did not commit go; rows that did commit (an error after the
            try:                 # commit, e.g. in reading them back) keep their files
                recover(store, folder)
            except Exception:  # the store cannot be read now: the journal stays for the next call's recovery
                pass
            raise
        fault_point("subsets.committed")
        journal.unlink()
    return rows


def recover(store: Store, folder: Path) -> None:
    """Finish what killed calls left (their journals; call under the writer lock): delete the files
    of subsets whose rows were never committed, then the journal."""
    journals = sorted(folder.glob(f"{JOURNAL_PREFIX}*"))
    if not journals:
        return
    committed = {s.id for s in store.list_subsets()}
    for journal in journals:
        for subset_id in journal.read_text().split():
            if subset_id not in committed:
                (folder / f"{subset_id}.npy").unlink(missing_ok=True)
        journal.unlink()


@contextmanager
def _writer_lock(folder: Path):
    """One creator of subsets at a time in `folder` (and none while one's journal is recovered)."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def training_indices(store: Store, subset_id: str, dataset: str, train_size: int) -> np.ndarray:
    """The indices a run on `dataset` (`train_size` training samples) trains on, after checking
    the subset was drawn from that data set and every index is inside it."""
    subset = store.get_subset(subset_id)
    source = store.get_run(subset.source_run_id)
    if dataset != source.dataset:
        raise MsdaError(f"subset {subset_id} selects {source.dataset} samples; the recipe trains on {dataset}")
    try:
        indices = np.load(subset.indices_path)
    except (OSError, ValueError) as e:
        raise MsdaError(f"subset {subset_id}: cannot read {subset.indices_path} ({e})") from None
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise MsdaError(f"subset {subset_id}: {subset.indices_path} is not a list of integer indices "
                        f"(shape {indices.shape}, dtype {indices.dtype})")
    if len(indices) and indices.max() >= train_size:
        raise MsdaError(f"subset {subset_id} has indices beyond the {train_size} training samples")
    if len(indices) and indices.min() < 0:
        raise MsdaError(f"subset {subset_id} has negative indices")
    if len(np.unique(indices)) != len(indices):
        raise MsdaError(f"subset {subset_id} repeats training samples; a subset names each sample once")
    return indices


def delete_subset_files(store: Store, source_run_id: str) -> None:
    """Delete the indices files of the subsets drawn from a run (its rows go with the run's)."""
    for subset in store.list_subsets():
        if subset.source_run_id == source_run_id:
            Path(subset.indices_path).unlink(missing_ok=True)
