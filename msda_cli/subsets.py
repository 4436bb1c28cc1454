"""The life cycle of a data subset: created by `msda subsample`, trained on with `msda train
--subset`, deleted with its source run by `msda runs rm`.

A subset is a row in the store (source run, measure, ratio, seed, size, settings) and a
NumPy file of sorted int64 training-set indices, `<results>/subsets/<subset id>.npy`, that
the row names. The file is written before its row, so a row always names a complete file; it
is deleted before its row, so an interrupted `runs rm` leaves a row that the next one deletes,
never a file that no row names. Reports read the rows through `Store.list_subsets()`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from msda_cli.errors import MsdaError
from msda_cli.store import Store, new_id
from msda_cli.store.tables import Subset


def create_subset(store: Store, source_run_id: str, measure: str, ratio: float, seed: int,
                  indices: np.ndarray, params: dict) -> Subset:
    """Write the indices file, then the row that names it; returns the row."""
    folder = store.results_dir / "subsets"
    folder.mkdir(parents=True, exist_ok=True)
    subset_id = new_id()
    path = folder / f"{subset_id}.npy"
    indices = np.asarray(indices, dtype=np.int64)
    np.save(path, indices)
    try:
        return store.add_subset(id=subset_id, source_run_id=source_run_id, measure=measure, ratio=float(ratio),
                                seed=int(seed), size=int(len(indices)), indices_path=str(path.resolve()),
                                params=json.dumps(params, sort_keys=True))
    except BaseException:  # no row: the file must not outlive the failed write
        path.unlink(missing_ok=True)
        raise


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
    if len(indices) and indices.max() >= train_size:
        raise MsdaError(f"subset {subset_id} has indices beyond the {train_size} training samples")
    return indices


def delete_subset_files(store: Store, source_run_id: str) -> None:
    """Delete the indices files of the subsets drawn from a run (its rows go with the run's)."""
    for subset in store.list_subsets():
        if subset.source_run_id == source_run_id:
            Path(subset.indices_path).unlink(missing_ok=True)
