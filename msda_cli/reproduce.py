"""`msda reproduce --table ID`: a table's plans held against the store, then the runs and measurements it lacks.

Each trainable cell's plan (msda_cli.report.plan), resolved with the shortening options
(`--epochs`, `--set`), makes one planned run per seed; cells of one plan share its runs. A planned
run is the stored run of its setting, seed and data (msda_cli.report.settings): finished, running,
interrupted or failed, else it is still to run. What is missing is done in stages: the runs to
train and the interrupted ones (failed ones too with --retry-failed) go to the parallel launcher
(msda_cli.engine.parallel; new runs under ids chosen there, resumed ones under their own), then
the follow-ups their cells need (`msda robust`, `msda subsample`) run here on the finished runs,
then the runs on the subsets those made. A planned run whose stored run is already finished is
left alone, so a second call does nothing. Every check (table, options, launcher, data) comes
before the store is opened for writing: bad input writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from msda_cli.errors import MsdaError
from msda_cli.grid import grid_keys, grid_points
from msda_cli.metric_names import VAL_TOP1
from msda_cli.report.choice import VALIDATION, make_selection
from msda_cli.report.frame import prepare
from msda_cli.report.plan import Resolved, resolve
from msda_cli.report.settings import setting, setting_text
from msda_cli.report.spec import OTHER_SEED, CellSpec, FollowUp, MetricSpec, Plan, RunOf, TableSpec
from msda_cli.report.tables import TABLES

STATUS_ORDER = ("finished", "running", "interrupted", "failed")  # which stored run a planned run is, first


@dataclass
class PlannedRun:
    """One run of a plan: its setting and seed, the cells it fills, and the follow-ups those need."""

    res: Resolved
    seed: int
    cells: list[tuple[str, str]] = field(default_factory=list)  # (row, column) labels
    needs: list[tuple[FollowUp, MetricSpec]] = field(default_factory=list)  # a follow-up and the metric it makes
    subset_of: tuple["PlannedRun", str, float] | None = None  # (source run, measure, ratio): trains on a subset
    run: dict | None = None  # the stored run it is (a row of Store.runs_frame), None: not trained yet
    subset_id: str | None = None  # the subset it trains on, once `msda subsample` made it
    missing: list[FollowUp] = field(default_factory=list)  # follow-ups its finished run lacks

    @property
    def status(self) -> str:
        return self.run["status"] if self.run is not None else "to run"

    @property
    def cells_text(self) -> str:
        """`Mixup / CNN, CNN FGSM`: the cells it fills, by row."""
        by_row: dict[str, list[str]] = {}
        for row, col in self.cells:
            by_row.setdefault(row, []).append(col)
        return "; ".join(f"{row} / {', '.join(cols)}" if row else ", ".join(cols) for row, cols in by_row.items())

    @property
    def key(self) -> tuple:
        return (self.res.text, self.seed, self.subset_of[1:] if self.subset_of else None)


@dataclass
class TablePlan:
    """A table's planned runs (matched to the store) and the cells it cannot train."""

    spec: TableSpec
    runs: list[PlannedRun]
    untrainable: list[tuple[str, str]]  # (cell, reason)
    seeds: list[int]
    retry_failed: bool = False
    ungridded: list[tuple[str, str]] = field(default_factory=list)  # (cell, --grid keys its method does not take)
    _sources: set[int] | None = field(default=None, init=False, repr=False, compare=False)

    def to_launch(self) -> list[PlannedRun]:
        """Runs to train or resume now (subset runs once their subset exists)."""
        out = []
        for pr in self.runs:
            if pr.subset_of is not None and pr.subset_id is None:
                continue
            if pr.status in ("to run", "interrupted") or (pr.status == "failed" and self.retry_failed):
                out.append(pr)
        return out

    def followups(self, pr: PlannedRun) -> list[FollowUp]:
        """The follow-up measurements this plan will make on the run: those its finished run lacks; for a run it
        trains or resumes, every one its cells need (and, for the source of subsets, `msda subsample`)."""
        if pr.status == "finished":
            return pr.missing
        if pr.status not in ("to run", "interrupted") and not (pr.status == "failed" and self.retry_failed):
            return []
        needs = list(dict.fromkeys(f for f, _ in pr.needs))
        if id(pr) in self._awaited_sources():
            needs.append(self.spec.plan.subsets)
        return needs

    def _awaited_sources(self) -> set[int]:
        """ids of the planned runs whose subsets some planned run still waits for (once per plan, not per run)."""
        if self._sources is None:
            self._sources = {id(o.subset_of[0]) for o in self.runs if o.subset_of is not None and o.subset_id is None}
        return self._sources

    def todo(self, pr: PlannedRun) -> str:
        """What is left to do for the planned run, follow-ups included."""
        then = "".join(f", then {f.describe()}" for f in self.followups(pr))
        if pr.status == "to run":
            return ("train" if pr.subset_of is None or pr.subset_id else "train, once its subset is made") + then
        if pr.status == "interrupted":
            return "resume" + then
        if pr.status == "failed":
            return "resume" + then if self.retry_failed else "nothing (--retry-failed resumes it)"
        if pr.status == "running":
            return "nothing (another process trains it)"
        return ", ".join(f.describe() for f in pr.missing)

    def frame(self) -> pd.DataFrame:
        """The plan as a table: cells, recipe, overrides, seed, stored run, status, what is left to do."""
        rows = [{"cells": pr.cells_text, "recipe": pr.res.recipe,
                 "overrides": " ".join(pr.res.overrides() + ([f"--subset ({pr.subset_of[1]}, t = {pr.subset_of[2]:g})"]
                                                             if pr.subset_of else [])),
                 "seed": pr.seed, "run": pr.run["id"] if pr.run is not None else "", "status": pr.status,
                 "to do": self.todo(pr)} for pr in self.runs]
        rows += [{"cells": cell, "recipe": "", "overrides": "", "seed": "", "run": "", "status": "cannot train",
                  "to do": reason} for cell, reason in self.untrainable]
        return pd.DataFrame(rows, columns=["cells", "recipe", "overrides", "seed", "run", "status", "to do"])

    def summary(self) -> str:
        n_train = sum(pr.status == "to run" for pr in self.runs)
        n_resume = sum(pr.status == "interrupted" or (pr.status == "failed" and self.retry_failed) for pr in self.runs)
        n_follow = sum(len(self.followups(pr)) for pr in self.runs)  # also on the runs still to train
        done = sum(pr.status == "finished" and not pr.missing for pr in self.runs)
        return (f"table {self.spec.id}: {len(self.runs)} planned runs ({done} done), {n_train} to train, "
                f"{n_resume} to resume, {n_follow} follow-up measurement(s) to make; "
                f"{len(self.untrainable)} cell(s) this tool cannot train"
                + "".join(f"\n{cell}: left at its planned setting (its method takes no {keys})"
                          for cell, keys in self.ungridded))


@dataclass(frozen=True)
class Request:
    """What `msda reproduce` was asked: the table, seeds, which cells, and how runs are made."""

    table: str
    seeds: tuple[int, ...] = (0, 1, 2)
    archs: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    epochs: int | None = None
    sets: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()  # `--grid key=a,b,c` for every cell that takes the key: one planned run per point
    select_by: str | None = None  # the metric a grid's setting is chosen by (default: the table's, else val_top1)
    data_dir: str | None = None
    retry_failed: bool = False

    def spec(self) -> TableSpec:
        spec = TABLES.get(str(self.table))
        if spec is None:
            raise MsdaError(f"unknown table {self.table!r}; valid ids: {', '.join(TABLES)}")
        if not self.seeds:
            raise MsdaError("--seeds names no seed")
        return spec

    def selection(self) -> dict:
        """`msda report`'s select_by and over for a request's grid (chosen among as a table's own grid is), else {}."""
        spec = self.spec()
        if not self.grid:
            return {}
        return dict(select_by=self.select_by or spec.select_by or VAL_TOP1,
                    over=spec.over + tuple(k for k in grid_keys(self.grid) if k not in spec.over))

    def report_where(self) -> list[str]:
        """The `--where` that shows this request's setting in `msda report` (what --epochs/--set change)."""
        return ([f"epochs={self.epochs}"] if self.epochs is not None else []) + list(self.sets)


# ----- the plan ---------------------------------------------------------------------------------
def planned_cells(req: Request) -> tuple[list[tuple[CellSpec, Resolved]], list[tuple[str, str]]]:
    """The cells the request selects, with their resolved plans; and those the tool cannot train."""
    spec = req.spec()
    if spec.dynamic_rows or spec.dynamic_cols:  # headers made from the data: one plan, the table's
        return [(None, resolve(spec.plan, req.epochs, req.sets))], []
    rows = {r.lower() for r in req.rows}
    archs = set(req.archs)
    seen_rows, seen_archs, taken = set(), set(), set()
    if req.grid:
        make_selection(req.selection()["select_by"], req.selection()["over"], spec)  # --select-by checked first
    cells, untrainable = [], []
    for cs in spec.cells():
        res = None if cs.plan.untrainable else resolve(cs.plan, req.epochs, req.sets)
        method = res.method if res is not None else cs.plan.method or ""
        names = {cs.row.label.lower(), (cs.row.group or "").lower(), method.lower()}
        if rows and not rows & names:
            continue
        seen_rows |= rows & names
        if res is None:
            if not archs:
                untrainable.append((cs.label, cs.plan.untrainable))
            continue
        if archs and res.arch not in archs:
            continue
        seen_archs.add(res.arch)
        grid = tuple(item for item in req.grid if takes(res, item))
        taken |= set(grid)
        if grid and req.selection()["select_by"] in VALIDATION and not res.config["data"].get("val_fraction"):
            raise MsdaError(f"--grid: cell {cs.label} holds no validation split out to choose its setting by "
                            f"{req.selection()['select_by']}: add --set data.val_fraction=0.1 "
                            "(or --select-by top1, chosen on the test set, where the table allows it)")
        # one planned run per point of the cell's grid (the request's keys win)
        cells += [(cs, resolve(cs.plan, req.epochs, req.sets + tuple(point)))
                  for point in grid_points((cs.plan | Plan(grid=grid)).grid)]
    if set(req.grid) - taken:
        key = grid_keys([sorted(set(req.grid) - taken)[0]])[0]
        raise MsdaError(f"--grid {key}: no selected cell's method takes it")
    if rows - seen_rows:
        labels = ", ".join(dict.fromkeys(h.label for h in spec.rows))
        raise MsdaError(f"--rows: table {spec.id} has no row {sorted(rows - seen_rows)[0]!r}; rows: {labels} "
                        "(or their methods)")
    if archs - seen_archs:
        raise MsdaError(f"--arch: no trainable cell of table {spec.id} trains {sorted(archs - seen_archs)[0]!r}")
    return cells, untrainable


def takes(res: Resolved, item: str) -> bool:
    """Whether the cell's method takes a `--grid` item's key (a `mixer.` key its method lacks: not; others: yes)."""
    from msda_cli.mixing import method_hparams

    key = grid_keys([item])[0]
    return not key.startswith("mixer.") or key.split(".")[1] in method_hparams(res.method)


def make_plan(req: Request, store) -> TablePlan:
    """The request's planned runs, each matched to the store's runs and metrics."""
    spec = req.spec()
    cells, untrainable = planned_cells(req)
    by_key: dict[tuple, PlannedRun] = {}
    for cs, res in cells:
        for seed in req.seeds:
            pr = by_key.setdefault((res.text, seed, None), PlannedRun(res, seed))
            if cs is not None:
                pr.cells.append((" / ".join(cs.row.path), cs.col.label))
                pr.needs += [(f, cs.metric) for f in cs.plan.followups if (f, cs.metric) not in pr.needs]
            for f in cs.plan.followups if cs is not None else ():
                source = dict(f.options).get("source")
                if isinstance(source, RunOf):  # the substitute a black-box attack crafts on: trained, same seed
                    sub = resolve(source.plan, req.epochs, req.sets)
                    cells = by_key.setdefault((sub.text, seed, None), PlannedRun(sub, seed)).cells
                    if ("", f"substitute model of {cs.col.label}") not in cells:
                        cells.append(("", f"substitute model of {cs.col.label}"))
    runs = list(by_key.values())
    if spec.dynamic_rows or spec.dynamic_cols:
        runs = _with_subset_runs(spec, runs)
    ungridded = {" / ".join(cs.row.path) + f" / {cs.col.label}": ", ".join(grid_keys(refused))
                 for cs, res in cells if cs is not None
                 for refused in [[item for item in req.grid if not takes(res, item)]] if refused}
    plan = TablePlan(spec, runs, untrainable, list(req.seeds), req.retry_failed, list(ungridded.items()))
    _match(plan, store)
    return plan


def _with_subset_runs(spec: TableSpec, sources: list[PlannedRun]) -> list[PlannedRun]:
    """The table of runs on subsets: each seed's source run, and one run per (measure, ratio) on its subsets."""
    subsets = spec.plan.subsets.settings
    measures, ratios = subsets["measure"].split(","), [float(r) for r in str(subsets["ratio"]).split(",")]
    out = []
    for src in sources:
        src.cells.append(("", "source of the subsets"))
        out.append(src)
        for m in measures:
            for t in ratios:
                out.append(PlannedRun(src.res, src.seed, [(m, f"t = {t:g}")], subset_of=(src, m, t)))
    return out


def _match(plan: TablePlan, store) -> None:
    """Each planned run's stored run, subset and missing follow-ups."""
    runs = store.runs_frame()
    planned = {(pr.res.dataset, pr.res.arch, pr.res.method) for pr in plan.runs}
    index: dict[tuple, list[dict]] = {}
    for rec in runs.to_dict("records"):
        if (rec["dataset"], rec["arch"], rec["method"]) not in planned:  # the setting of candidates only
            continue
        try:
            text = setting_text(setting(json.loads(rec["config"])))
        except (TypeError, ValueError):  # an unreadable config is no plan's run
            continue
        sub = rec["subset_id"] if isinstance(rec["subset_id"], str) else None
        index.setdefault((text, int(rec["seed"]), sub), []).append(rec)
    subsets = store.list_subsets() if any(pr.subset_of for pr in plan.runs) else []
    prep = prepare(store.final_metrics_frame(), subsets) if any(pr.needs for pr in plan.runs) else None
    for pr in plan.runs:  # sources come before the runs on their subsets
        if pr.subset_of is not None:
            src, measure, ratio = pr.subset_of
            pr.subset_id = _find_subset(subsets, src, measure, ratio)
            if pr.subset_id is None:
                continue
        found = index.get((pr.res.text, pr.seed, pr.subset_id), [])
        if found:  # the best status, then the latest
            latest_first = sorted(found, key=lambda r: str(r["created_at"]), reverse=True)
            pr.run = min(latest_first, key=lambda r: STATUS_ORDER.index(r["status"]))
        if pr.status == "finished":
            pr.missing = [f for f, ms in pr.needs if not _has_metric(prep, ms, pr.run["id"])]
    plan._sources = None  # the subsets found change which sources are awaited
    waiting = {id(pr.subset_of[0]): pr.subset_of[0] for pr in plan.runs if pr.subset_of and pr.subset_id is None}
    for src in waiting.values():
        if src.status == "finished":  # some subset of this source is still to make
            src.missing.append(plan.spec.plan.subsets)


def _find_subset(subsets, src: PlannedRun, measure: str, ratio: float) -> str | None:
    if src.run is None:
        return None
    for s in subsets:
        if s.source_run_id == src.run["id"] and s.measure == measure and abs(s.ratio - ratio) < 1e-9:
            return s.id
    return None


def _has_metric(prep, ms: MetricSpec, run_id: str) -> bool:
    values, _, _ = prep.per_run_values(ms, {})
    pos = np.flatnonzero(prep.run_ids == run_id)
    return bool(len(pos)) and not np.isnan(values[pos[0]])


# ----- checks before anything starts ----------------------------------------------------------------
def missing_data(plan: TablePlan, req: Request) -> list[str]:
    """What the work left to do needs and is not here: each data set once, each follow-up folder."""
    from msda_cli.config import validate
    from msda_cli.engine.launch import check_data, resolve_configs

    problems: dict[str, str] = {}
    for pr in plan.to_launch():
        # Which data set, from the stored or planned config (seed and grid point change none): each is checked once.
        raw = json.loads(pr.run["config"]) if pr.run is not None else pr.res.config
        data = raw.get("data", {})
        root = req.data_dir if pr.run is None and req.data_dir is not None else data.get("root")
        key = json.dumps([raw["dataset"], root, data.get("options", {})], sort_keys=True, default=str)
        if key in problems:  # each data set checked once (loading one can take a while)
            continue
        if pr.run is not None:  # resumed: with its stored config
            cfg = validate(json.loads(pr.run["config"]), source=f"run {pr.run['id']} config")
        else:
            cfg = resolve_configs(pr.res.request(pr.seed, req.data_dir))[0]
        try:
            check_data([cfg])
            problems[key] = ""
        except MsdaError as e:
            problems[key] = str(e)
    launching = {id(pr) for pr in plan.to_launch()}
    for pr in plan.runs:
        todo = pr.missing if pr.status == "finished" else [f for f, _ in pr.needs] if id(pr) in launching else []
        for f in todo:
            for option in ("ood", "natural_adversarial"):
                name = f.settings.get(option)
                if name is not None and not Path(req.data_dir or "", name).is_dir():
                    problems[name] = (f"{f.describe()} needs the folder {name}/ in --data-dir "
                                      f"({req.data_dir or 'not given'})")
    return list(dict.fromkeys(p for p in problems.values() if p))  # folds of one missing data set: one line


# ----- doing it -----------------------------------------------------------------------------------
def launch(todo: list[PlannedRun], req: Request, store, launcher: dict, console, out, slurm=None) -> int | None:
    """Train and resume these planned runs in parallel children (`launcher`: jobs, gpus, gpus_per_run,
    cpu), or as one Slurm job array (`slurm`: SlurmOptions); None to go on, else the exit status (130
    when a signal stopped them, 0 when Slurm took them and nobody waits)."""
    from msda_cli.engine.launch import resolve_configs
    from msda_cli.engine.parallel import new_run_specs, resume_spec, run_parallel
    from msda_cli.engine.parallel_view import make_view, print_summary

    if slurm is not None:
        from msda_cli.engine.slurm import launch_planned

        new = [pr.res.request(pr.seed, req.data_dir, pr.subset_id) for pr in todo if pr.run is None]
        resumed = [store.get_run(pr.run["id"]) for pr in todo if pr.run is not None]
        return launch_planned(new, resumed, store.target, slurm, console, out)

    specs = []
    for pr in todo:
        if pr.run is not None:
            specs.append(resume_spec(store.get_run(pr.run["id"])))
        else:
            train_req = pr.res.request(pr.seed, req.data_dir, pr.subset_id)
            specs += new_run_specs(train_req, resolve_configs(train_req))
    view = make_view(console)
    try:
        outcomes = run_parallel(specs, store.target, display=view, **launcher)
    finally:
        view.close()
    print_summary([o.progress for o in outcomes], out)
    return 130 if any(o.stopped for o in outcomes) else None


def follow_up(plan: TablePlan, req: Request, store, tried: set, log) -> bool:
    """Make every missing follow-up of the finished planned runs not `tried` before (it is added to);
    True if any failed."""
    from msda_cli.runs import pick_device

    failed = False
    device = pick_device()
    for pr in plan.runs:
        for f in pr.missing if pr.status == "finished" else ():
            if (pr.run["id"], f) in tried:
                continue
            tried.add((pr.run["id"], f))
            log(f"{f.describe()} on run {pr.run['id']} ({pr.cells_text}, seed {pr.seed})")
            try:
                _run_follow_up(f, pr, plan, req, store, device)
            except MsdaError as e:
                failed = True
                log(f"  failed: {e}")
    return failed


def _run_follow_up(f: FollowUp, pr: PlannedRun, plan: TablePlan, req: Request, store, device: str) -> None:
    if f.command == "robust":
        from msda_cli.robust.command import RobustRequest, run_robust

        options = dict(f.options)
        for option in ("ood", "natural_adversarial"):
            if option in options:
                options[option] = str(Path(req.data_dir or "", options[option]))
        if options.get("source") == OTHER_SEED:
            options["source"] = _other_seed(plan, pr)
        elif isinstance(options.get("source"), RunOf):
            options["source"] = _run_of(plan, pr, options["source"], req)
        run_robust(store, pr.run["id"], RobustRequest(**options, data_dir=req.data_dir), device, log=lambda _: None)
    elif f.command == "subsample":
        from msda_cli import subsample as sub

        done = {(pr2.subset_of[1], pr2.subset_of[2]) for pr2 in plan.runs
                if pr2.subset_of is not None and pr2.subset_of[0] is pr and pr2.subset_id is not None}
        settings = f.settings
        wanted = sub.plan(str(settings["ratio"]).split(","), settings["measure"].split(","), [], [])
        todo = [s for s in wanted if (s.measure, s.ratio) not in done]
        if todo:
            sub.subsample(store, pr.run["id"], todo, sub.ScoreSettings(seed=pr.seed).check(),
                          data_dir=req.data_dir, device=device)
    else:
        raise MsdaError(f"unknown follow-up command {f.command!r}")


def _other_seed(plan: TablePlan, pr: PlannedRun) -> str:
    """The finished run of the same plan with the next seed (a gray-box attack's crafting model)."""
    siblings = {p.seed: p for p in plan.runs if p.res is pr.res and p.subset_of is None and p.status == "finished"}
    seeds = [s for s in plan.seeds if s != pr.seed]
    for seed in seeds[plan.seeds.index(pr.seed):] + seeds[:plan.seeds.index(pr.seed)]:
        if seed in siblings:
            return siblings[seed].run["id"]
    raise MsdaError("a gray-box attack is crafted on the run of another seed: give --seeds with two or more "
                    "seeds, and train them")


def _run_of(plan: TablePlan, pr: PlannedRun, source: RunOf, req: Request) -> str:
    """The finished planned run of the substitute's plan with the cell's run's seed (a black-box crafting model)."""
    text = resolve(source.plan, req.epochs, req.sets).text
    for p in plan.runs:
        if p.res.text == text and p.seed == pr.seed and p.status == "finished":
            return p.run["id"]
    raise MsdaError(f"the substitute model {source.describe()} of seed {pr.seed} is not trained yet")


def reproduce(req: Request, db, dry_run: bool, launcher: dict, out, err, slurm=None, fmt: str = "rich") -> int:
    """`msda reproduce`: print the plan, make what it lacks (nothing with `dry_run`), print the table in `fmt`
    (msda_cli.render's formats; in any but rich, stdout carries that last table alone, the rest goes to `err`).
    Returns the exit status: 0 when every planned run and measurement is there, 130 when a signal
    stopped the runs, else 1. MsdaError (before anything is written) on bad input or missing data."""
    from msda_cli.engine.parallel import plan_slots
    from msda_cli.render import print_frame
    from msda_cli.report import build_report, render, render_rich
    from msda_cli.store import Store

    spec = req.spec()
    notes = out if fmt == "rich" else err
    if slurm is None:
        plan_slots(**launcher)
    else:
        from msda_cli.engine.slurm import executor_parameters

        executor_parameters(slurm)
    plan = make_plan(req, Store(db, read_only=True))  # nothing is written before every check has passed
    shown_plan = (fmt, out) if dry_run else ("rich", notes)  # a dry run's plan is its last table
    print_frame(plan.frame(), shown_plan[0], title=f"Plan: {spec.title}", console=shown_plan[1])
    notes.print(plan.summary(), highlight=False)
    missing = missing_data(plan, req)
    if missing:
        raise MsdaError(f"table {spec.id} needs data that is not here: {'; '.join(missing)}")
    if dry_run:
        notes.print("--dry-run: nothing was run.", highlight=False)
        return 0
    store = Store(db)
    launched, tried, failed = set(), set(), False
    while True:  # training, then the follow-ups, then the runs on the subsets those made
        todo = [pr for pr in plan.to_launch() if pr.key not in launched]
        if todo:
            launched |= {pr.key for pr in todo}
            code = launch(todo, req, store, launcher, err, notes, slurm)
            if code is not None:
                return code
            plan = make_plan(req, store)
        n_tried = len(tried)
        failed |= follow_up(plan, req, store, tried, lambda text: err.print(text, markup=False, highlight=False))
        if not todo and len(tried) == n_tried:
            break
        plan = make_plan(req, store)
    where = req.report_where()
    chosen = req.selection()
    built = build_report(Store(db, read_only=True), table=spec.id, paper=True, where=where, **chosen)
    if fmt == "rich":
        out.print(render_rich(built))
    else:
        print(render(built, fmt), end="")
    shown = " ".join([f"--where {w}" for w in where]
                     + ([f"--select-by {chosen['select_by']} --over {','.join(chosen['over'])}"] if chosen else []))
    notes.print(f"(as `msda report --table {spec.id} --paper{' ' + shown if shown else ''}` prints it)",
              highlight=False)
    done = all(pr.status == "finished" and not pr.missing for pr in plan.runs)
    return 0 if done and not failed else 1
