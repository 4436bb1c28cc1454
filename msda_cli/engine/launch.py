"""`msda train`: expand a recipe into runs, check every one of them, then train them in turn.

All checks (recipe keys, names, hyperparameters, data directories) happen before the first
run row is written, so bad input leaves nothing behind. A run that fails stores its error;
Ctrl-C or SIGTERM marks it interrupted; SIGKILL leaves a dead pid that `runs list` reports
as interrupted. Either way `msda train --resume RUN_ID` continues it.

Each run is trained under its lease in the store (`msda_cli.store.lease`), renewed by a heartbeat
thread while it trains: a resume takes the lease only from a dead owner, and a run whose lease
is lost (deleted by `msda runs rm --force`, or taken over) stops with one line and writes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np

from msda_cli import __version__, provenance
from msda_cli.config import Config, apply_set, check_names, expand, read_recipe, resolve_method_list, validate
from msda_cli.engine.checkpoint import CHECKPOINT_NAME, RESUME_KEYS, load_checkpoint
from msda_cli.checks import check_int
from msda_cli.errors import MsdaError, RunFailed, disk_full
from msda_cli.grid import check_apart, grid_keys, grid_points, point_label
from msda_cli.mixing import build_mixer
from msda_cli.store import LeaseLost, Store, StoreError
from msda_cli.store import progress as progress_file
from msda_cli.store.tags import join_tags
from msda_cli.subsets import training_indices


@dataclass
class TrainRequest:
    recipe: str
    methods: list[str] = field(default_factory=list)
    archs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    epochs: int | None = None
    sets: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)  # `--grid key=a,b,c`: one run per point of the product
    data_dir: str | None = None
    download: bool = False
    subset_id: str | None = None
    run_id: str | None = None  # the new run's id, chosen by a launcher (engine/parallel.py); one run only
    name: str | None = None  # the runs' name (default recipe/method/arch/seed)
    tags: list[str] = field(default_factory=list)


def resolve_configs(req: TrainRequest) -> list[Config]:
    """Every run's validated config; raises MsdaError on the first problem."""
    raw = read_recipe(req.recipe)
    recipe_name = raw["name"]
    if req.epochs is not None:
        check_int("--epochs", req.epochs, min=1)
        raw["epochs"] = req.epochs
    if req.data_dir is not None:
        if not os.path.isdir(req.data_dir):
            raise MsdaError(f"--data-dir {req.data_dir} is not a directory")
        raw.setdefault("data", {})["root"] = req.data_dir
    if req.download:
        raw.setdefault("data", {})["download"] = True
    configs = []
    check_apart(req.sets, req.grid)
    for one, point in [(one, point) for point in grid_points(req.grid)
                       for one in expand(raw, resolve_method_list(req.methods), req.archs, req.seeds)]:
        one = apply_set(one, req.sets + point)
        one["name"] = recipe_name
        cfg = validate(one, source=f"recipe {recipe_name}")
        check_names(cfg)
        # Store every hyperparameter, defaults included, so reports can filter on any of them.
        cfg.mixer = build_mixer(cfg.method, **cfg.mixer).hparams()
        configs.append(cfg)
    return configs


def preflight(req: TrainRequest | None, store_path, resume_id: str | None = None) -> str:
    """Check a request (every run's config) before Accelerate starts, since it may spawn a process
    group; returns the mixed precision to start it with: the recipe's, or the resumed run's own
    (whose config is checked, with everything else, once training starts)."""
    if resume_id is None:
        return resolve_configs(req)[0].precision
    return json.loads(Store(store_path).get_run(resume_id).config).get("precision", "no")


def _data_key(cfg: Config) -> str:
    return json.dumps([cfg.dataset, cfg.data.root, cfg.data.options], sort_keys=True, default=str)


def check_data(configs: list[Config]) -> None:
    """Open each distinct data set once, and build each model on the meta device (no memory,
    no init), so a missing directory or a bad model option fails before any run starts."""
    import torch

    from msda_cli.data.split import holdout
    from msda_cli.engine.build import build_data, build_network
    from msda_cli.mixing.hidden import REPRESENTATION_METHODS

    infos = {}
    for key, cfg in {_data_key(c): c for c in configs}.items():
        train_set = build_data(cfg, train=True)
        infos[key] = train_set.info
        holdout(train_set.targets, cfg.data.val_fraction, cfg.seed)  # a split that leaves no sample fails here
        build_data(cfg, train=False)
    for cfg in configs:
        if infos[_data_key(cfg)].collate is not None and cfg.method not in REPRESENTATION_METHODS:  # graph batches
            raise MsdaError(f"method {cfg.method!r} mixes input tensors; the samples of {cfg.dataset} are graphs: "
                            f"use {', '.join(REPRESENTATION_METHODS)}")
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's note on zero-element init: the error below says it
                model = build_network(cfg, infos[_data_key(cfg)])
        except MsdaError:
            raise
        except Exception as e:  # e.g. a negative width: torch's own error, one line
            raise MsdaError(f"cannot build {cfg.arch} with options {cfg.model}: {str(e).splitlines()[0]}") from None
        empty = next((name for name, p in model.named_parameters() if p.numel() == 0), None)
        if empty is not None:  # e.g. width 0: builds, then fails in the first forward pass
            raise MsdaError(f"cannot build {cfg.arch} with options {cfg.model}: parameter {empty} has no elements")


class _Terminated(KeyboardInterrupt):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated()


def train(req: TrainRequest | None, store_path, accelerator, progress=None, resume_id: str | None = None) -> list[str]:
    """Train every run of `req` (or resume `resume_id`); returns the run ids."""
    main = accelerator.is_main_process
    store = Store(store_path) if main and resume_id is not None else None
    if resume_id is not None:
        configs, run_ids = _prepare_resume(store, resume_id, accelerator)
        subset_id = store.get_run(run_ids[0]).subset_id if main else None
    else:
        configs = resolve_configs(req)
        check_data(configs)
        store = Store(store_path) if main else None  # after the checks: a refused request creates no database
        run_ids = [None] * len(configs)
        if req.run_id is not None and main:
            _check_new_run_id(store, req.run_id, len(configs))
        subset_id = req.subset_id
    subset = check_subset(store, subset_id, configs) if main and subset_id else None
    if main and resume_id is not None:  # every check passed: take the run (of concurrent resumes, one does)
        store.take_over(run_ids[0])
        row = store.get_run(run_ids[0])
        before = row.provenance
        # A row that never started (queued by `--launcher slurm`) gets its first start here, not a resume.
        kind = "start" if not provenance.starts(before) and row.epochs_done == 0 else "resume"
        start = provenance.collect(accelerator.device, kind, accelerator.num_processes)
        store.update_run(run_ids[0], provenance=provenance.appended(before, start))
    subset = _broadcast(accelerator, subset)
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        done = []
        for cfg, run_id in zip(configs, run_ids):
            if main and run_id is None:
                run_id = store.start_run(
                    id=req.run_id,
                    name=req.name or run_name(cfg, req.grid), tags=join_tags(req.tags),
                    recipe=cfg.name, dataset=cfg.dataset,
                    arch=cfg.arch, method=cfg.method, seed=cfg.seed, config=cfg.model_dump_json(),
                    subset_id=subset_id, msda_version=__version__,
                    provenance=provenance.appended(None, provenance.collect(accelerator.device, "start",
                                                                            accelerator.num_processes)),
                ).run_id
                store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
                config_json = json.dumps(json.loads(cfg.model_dump_json()), indent=2)
                (store.run_dir(run_id) / "config.json").write_text(config_json)
            done.append(_fit_one(cfg, store, run_id, accelerator, resume_id is not None, subset, progress))
        return done
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def run_name(cfg: Config, grid: list[str]) -> str:
    """`recipe/method/arch/s0`, and the grid point (`alpha=0.1 eta=0.001`) where the request has a grid."""
    point = point_label(json.loads(cfg.model_dump_json()), grid_keys(grid))
    return f"{cfg.name}/{cfg.method}/{cfg.arch}/s{cfg.seed}" + (f" {point}" if point else "")


def _check_new_run_id(store: Store, run_id: str, n_runs: int) -> None:
    if n_runs != 1:
        raise MsdaError(f"--run-id names one run; the options expand into {n_runs}")
    try:
        taken = store.get_run(run_id).id == run_id
    except MsdaError:
        taken = False
    if taken:
        raise MsdaError(f"--run-id {run_id}: a run with this id exists")


def check_subset(store: Store, subset_id: str, configs: list[Config]) -> np.ndarray:
    """The subset's indices, checked against the data set the runs train on (one request's
    configs differ in method, architecture and seed only, so they share it)."""
    from msda_cli.engine.build import build_data

    return training_indices(store, subset_id, configs[0].dataset, len(build_data(configs[0], train=True)))


def _broadcast(accelerator, obj):
    if accelerator.num_processes == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([obj])[0]


def _fit_one(cfg, store, run_id, accelerator, resume, subset, progress) -> str:
    from msda_cli.engine.train import fit

    lease = store.leases[run_id].beating() if store is not None else None
    try:
        return fit(cfg, store, run_id, accelerator, resume=resume, subset_indices=subset, progress=progress)
    except LeaseLost as e:  # deleted or taken over: write nothing more, and undo a folder recreated since
        _drop_if_deleted(store, e)
        raise
    except KeyboardInterrupt:
        if lease is not None:
            lease.quiet()  # no beat may land after the row says interrupted
        _record_stop(store, run_id, "interrupted by signal", status="interrupted")
        raise
    except StoreError as e:  # the database (a full disk, a lock, a read-only file) stopped the run
        _record_stop(store, run_id, str(e))
        raise RunFailed(f"run {run_id} stopped: {e}; to continue the run: `msda train --resume {run_id}`") from None
    except MsdaError as e:
        _record_stop(store, run_id, str(e))
        raise
    except RunFailed as e:  # a failure the loop explains in one line (a diverged loss): no traceback
        _record_stop(store, run_id, str(e))
        raise
    except Exception as e:
        if lease is not None and not lease.renew():  # it failed because its run was deleted under it
            lost = store.lease_lost(lease)
            _drop_if_deleted(store, lost)
            raise lost from None
        full = disk_full(e)
        if full is not None:  # nothing more to write there (no error.log): one line, and the run resumes
            where = full.filename or (store.run_dir(run_id) if store is not None else "the run folder")
            message = f"the disk holding {where} is full ({full.strerror})"
            _record_stop(store, run_id, message)
            raise RunFailed(f"run {run_id} stopped: {message}; free some space, then resume it with "
                            f"`msda train --resume {run_id}`") from None
        message = "".join(traceback.format_exception_only(type(e), e)).strip()
        where = "the main process"
        if store is not None:
            _record_stop(store, run_id, message)
            log = store.run_dir(run_id) / "error.log"
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(traceback.format_exc())
                where = str(log)
            except OSError:
                where = "no file: it could not be written"
        raise RunFailed(f"run {run_id} failed: {message.splitlines()[-1]} (traceback in {where})") from e
    finally:
        if store is not None and not isinstance(sys.exc_info()[1], LeaseLost):  # a new owner's file stays
            progress_file.clear(store.run_dir(run_id))
        if lease is not None:
            lease.release()


def _record_stop(store, run_id: str, message: str, status: str = "failed") -> None:
    """Store why a run stopped, where the store can still be written: on a full disk it cannot, and
    the row then stays `running` with a dead owner, which every reader shows as interrupted."""
    if store is None:
        return
    try:
        store.fail_run(run_id, message, status=status)
    except StoreError:
        pass


def _drop_if_deleted(store, lost: LeaseLost) -> None:
    """A run deleted while it trained (`runs rm --force`): remove its folder if this process wrote
    into it after the deletion (a checkpoint, the log), so no orphan folder stays behind."""
    if lost.deleted:
        shutil.rmtree(store.run_dir(lost.run_id), ignore_errors=True)


def check_hparams_complete(cfg, run_id: str) -> None:
    """A stored config holds every hyperparameter of its method (defaults resolved). One missing
    was added to the method after the run started: resuming could change the method mid-run."""
    from msda_cli.mixing import method_hparams

    missing = sorted(set(method_hparams(cfg.method)) - set(cfg.mixer))
    if missing:
        raise MsdaError(f"run {run_id} was started by an older msda: method {cfg.method!r} has gained "
                        f"{', '.join(missing)} since, so resuming could change the method mid-run; "
                        "start a new run instead")


def _prepare_resume(store, run_id, accelerator):
    if store is not None:
        run = store.resumable(run_id)
        cfg = validate(json.loads(run.config), source=f"run {run.id} config")
        check_names(cfg)
        check_hparams_complete(cfg, run.id)
        check_data([cfg])
        checkpoint = store.run_dir(run.id) / CHECKPOINT_NAME
        if checkpoint.is_file():  # a bad one is refused before the run row is touched
            load_checkpoint(checkpoint, keys=RESUME_KEYS)
        payload = [cfg.model_dump_json(), run.id]
    else:
        payload = None
    payload = _broadcast(accelerator, payload)
    return [validate(json.loads(payload[0]))], [payload[1]]
