"""`msda eval`: the clean test metrics of a stored run (top-1, top-5, ECE with 15 bins, NLL),
stored as kind eval with the data set, the checkpoint's epoch and the number of examples.

`dataset` evaluates the run's model on another data set's test split; those metrics are stored
under names prefixed with its name (`fashion-mnist_top1`), beside the run's own. A finished run's
checkpoint is the one its final rows measured (the last epoch's, or best.pt's under checkpoint_keep
best): an eval of it on the run's own test split is that setting again (the report keeps the latest
value; data set and epoch are bookkeeping params). An unfinished run's checkpoint is another model
than any final rows the run may later store: its eval names the file in `checkpoint`, a setting of its own.
"""

from __future__ import annotations

import json

import pandas as pd
from torch.utils.data import DataLoader

from msda_cli.engine.checkpoint import run_checkpoint
from msda_cli.evaluation import evaluate
from msda_cli.metric_names import EVAL
from msda_cli.runs import load_run


def run_eval(store, run_id: str, device: str, dataset: str | None = None,
             data_dir: str | None = None) -> tuple[str, pd.DataFrame]:
    """Evaluate `run_id` on a test split and store the metrics; returns (run id, one-row frame)."""
    loaded = load_run(store, run_id, device=device, data_dir=data_dir, dataset=dataset)
    loader = DataLoader(loaded.test_set, batch_size=loaded.config.eval_batch_size, shuffle=False,
                        collate_fn=loaded.test_set.info.collate)
    metrics = evaluate(loaded.model, loader)
    other = dataset is not None and dataset != json.loads(loaded.run.config)["dataset"]
    prefix = f"{dataset}_" if other else ""
    params = {"dataset": dataset or loaded.config.dataset, "epoch": loaded.epoch, "n_examples": len(loaded.test_set)}
    if loaded.run.status != "finished":
        params["checkpoint"] = run_checkpoint(store, loaded.run).name
    store.add_metrics(loaded.run.id, EVAL, [(prefix + name, value, None, params) for name, value in metrics.items()])
    return loaded.run.id, pd.DataFrame([{"run": loaded.run.id, "dataset": params["dataset"], **metrics}])
