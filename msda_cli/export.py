"""`msda export`: stored runs in the trackers people already use, TensorBoard and MLflow.

Each run carries its per-epoch metrics (step = the epoch, counted from 1 as `msda plot curves`
draws it), its final metrics (epoch null: evaluation, robustness, analyses; settings in the
metric's params become part of its key) and its config flattened to dotted keys. TensorBoard
gets one log directory per run (DEST/RUN_ID: scalars `train/…` and `final/…`, the config as a
text summary, hyperparameters in the HParams tab); MLflow one run per stored run in an
experiment, named by the run's setting and tagged `msda.run_id`. A run already exported there
is left as it is (said so), so exporting twice adds nothing. Both libraries are optional
imports: a missing one is one line naming the package to install.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from msda_cli.errors import MsdaError

from msda_cli.choices import TARGETS  # one source with --help
MLFLOW_STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "running": "RUNNING"}
RUN_ID_TAG = "msda.run_id"


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """{"optim.lr": "0.1", ...}: nested dicts to dotted keys, lists and scalars as JSON text."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def _key(text: str) -> str:
    """A metric key both trackers accept: letters, digits, `_-./ ` kept, anything else as `_`."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def metric_series(store, run_id: str) -> tuple[list[tuple[str, float, int]], dict[str, float]]:
    """([(key, value, step)] per epoch, {key: value} final, the latest of a repeated key)."""
    per_epoch, final = [], {}
    for m in store.metrics(run_id):
        params = json.loads(m.params or "{}")
        extra = "".join(f"/{k}_{v}" for k, v in sorted(params.items()) if not isinstance(v, (dict, list)))
        key = _key(f"{m.kind}/{m.name}{extra}")
        if m.epoch is None:
            final[key] = float(m.value)
        else:
            per_epoch.append((key, float(m.value), int(m.epoch) + 1))
    return per_epoch, final


def export_runs(store, runs: list, to: str, dest: str, experiment: str = "msda") -> list[str]:
    """Export `runs` (store rows) to `to` at `dest`; one line per run says where it went."""
    if to == "tensorboard":
        return [_to_tensorboard(store, run, Path(dest)) for run in runs]
    return _to_mlflow(store, runs, dest, experiment)


def _to_tensorboard(store, run, root: Path) -> str:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MsdaError("--to tensorboard needs the tensorboard package: pip install tensorboard") from None
    from msda_cli.curves import run_label

    if root.exists() and not root.is_dir():
        raise MsdaError(f"{root} is a file; give a log directory")
    folder = root / run.id
    if folder.is_dir() and any(folder.iterdir()):
        return f"{run.id}: already exported to {folder} (left as it is)"
    per_epoch, final = metric_series(store, run.id)
    config = json.loads(run.config or "{}")
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for key, value, step in per_epoch:
            writer.add_scalar(key, value, global_step=step)
        for key, value in final.items():
            writer.add_scalar(f"final/{key}", value, global_step=run.epochs_done)
        writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", global_step=0)
        writer.add_text("run", f"{run_label(run)} ({run.status}, id {run.id})", global_step=0)
        metrics = {f"final/{k}": v for k, v in final.items()} or {"final/none": 0.0}  # HParams needs one metric
        writer.add_hparams(flatten(config), metrics, run_name=".")
    finally:
        writer.close()
    return f"{run.id}: {len(per_epoch)} per-epoch and {len(final)} final values in {folder}"


def _to_mlflow(store, runs: list, uri: str, experiment: str) -> list[str]:
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MsdaError("--to mlflow needs the mlflow package: pip install mlflow-skinny") from None
    from msda_cli.curves import run_label

    lines = []
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        for run in runs:
            done = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{run.id}'")
            if done:
                lines.append(f"{run.id}: already exported to {uri} as MLflow run {done[0].info.run_id} (left as it is)")
                continue
            per_epoch, final = metric_series(store, run.id)
            start = int(run.created_at.timestamp() * 1000)
            end = int(run.finished_at.timestamp() * 1000) if run.finished_at else None
            created = client.create_run(experiment_id, start_time=start, run_name=run_label(run),
                                        tags={RUN_ID_TAG: run.id, "msda.recipe": run.recipe})
            mlflow_id = created.info.run_id
            metrics = [Metric(key, value, start, step) for key, value, step in per_epoch]
            metrics += [Metric(f"final/{key}", value, end or start, run.epochs_done) for key, value in final.items()]
            params = [Param(k, v[:6000]) for k, v in flatten(json.loads(run.config or "{}")).items()]
            client.log_batch(mlflow_id, metrics=metrics, params=params, tags=[RunTag("msda.status", run.status)])
            client.set_terminated(mlflow_id, MLFLOW_STATUS.get(run.status, "FINISHED"), end_time=end)
            lines.append(f"{run.id}: {len(per_epoch)} per-epoch and {len(final)} final values in {uri} "
                         f"(MLflow run {mlflow_id})")
    except MlflowException as e:
        if "MLFLOW_ALLOW_FILE_STORE" in str(e.message):  # MLflow 3 keeps file stores behind a switch
            raise MsdaError(f"mlflow refuses the file store {uri} unless MLFLOW_ALLOW_FILE_STORE=true is set; "
                            "or give a database URI such as sqlite:///mlflow.db") from None
        raise MsdaError(f"mlflow ({uri}): {' '.join(str(e.message).split())}") from None
    return lines
