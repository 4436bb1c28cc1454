"""The stored runs, subsets and the recipes: msda runs list/show/rm/tag/note/compare, subsets, recipes."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer
from typing_extensions import Annotated

from msda_cli.checks import check_choice
from msda_cli.choices import RUN_STATUSES, spoken
from msda_cli.completion import choices as offer
from msda_cli import completion
from msda_cli.errors import MsdaError
from msda_cli.cli.common import _store, out, runs_app, subsets_app, recipes_app, DbOption, FormatOption


RunIdArgument = Annotated[str, typer.Argument(help="Run id (or a unique prefix).", autocompletion=completion.run_ids)]


@runs_app.command("list")
def runs_list(
    status: Annotated[Optional[str], typer.Option(
        help=f"Only runs with this status: {spoken(RUN_STATUSES)}.", autocompletion=offer(RUN_STATUSES))] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Only runs with key=value (a column, tag, or a config key such as optim.lr; key=a,b; key!=v).")] = None,
    sort: Annotated[Optional[str], typer.Option(help="Sort by a column, e.g. top1 (best first) or method.")] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Reverse the --sort order.")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Show at most N runs.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Every stored run with its status, progress (epochs, time left while running) and final test top-1.

    \b
    Examples:
      msda runs list --where method=mixup,cutmix --sort top1 --limit 5
      msda runs list --where tag=baseline --where optim.lr=0.05
    """
    from msda_cli.render import check_format, print_frame
    from msda_cli.report.find import sort_runs, where_mask
    from msda_cli.store.summary import runs_summary
    from msda_cli.store.tables import RUN_STATUSES

    check_format(fmt)
    if status is not None:
        check_choice("status", status, RUN_STATUSES)
    store = _store(db, read_only=True)  # reads only: a read-only or full disk will do, a missing database is empty
    frame = runs_summary(store)
    stored = store.runs_frame()
    configs = stored["config"].reset_index(drop=True)
    conditions = list(where or []) + ([f"status={status}"] if status else [])
    keep = where_mask(frame.reset_index(drop=True), configs, conditions)
    frame = sort_runs(frame.reset_index(drop=True)[keep], sort, reverse)
    frame = frame.head(limit) if limit else frame
    jobs = frame["id"].map(stored.set_index("id")["slurm_job"]) if "slurm_job" in stored else None
    if jobs is not None and jobs.notna().any():  # Slurm is asked only about runs it trains, once for all of them
        from msda_cli.engine.slurm import slurm_column

        frame.insert(frame.columns.get_loc("status") + 1, "slurm", slurm_column(list(jobs)))
    print_frame(frame, fmt, title=f"Runs in {store.where}", console=out)


@runs_app.command("show")
def runs_show(
    run_id: RunIdArgument,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """A run's details, its config and its metrics (json: all of it as one object)."""
    import shlex

    import pandas as pd
    from rich.markup import escape

    from msda_cli import provenance
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    store = _store(db, create=False, read_only=True)
    run = store.get_run(run_id)
    fields = ("id", "name", "recipe", "dataset", "arch", "method", "seed", "status", "epochs_done",
              "created_at", "finished_at", "heartbeat_at", "pid", "host", "checkpoint", "subset_id",
              "msda_version", "tags", "note", "error")
    metrics = store.metrics(run.id)
    frame = pd.DataFrame([{"kind": m.kind, "name": m.name, "epoch": m.epoch, "value": m.value,
                           "params": m.params if m.params != "{}" else ""} for m in metrics],
                         columns=["kind", "name", "epoch", "value", "params"])
    if fmt == "json":
        record = {key: getattr(run, key) for key in fields}
        record["config"] = json.loads(run.config)
        record["provenance"] = provenance.starts(run.provenance)
        record["metrics"] = [{"kind": m.kind, "name": m.name, "epoch": m.epoch, "value": m.value,
                              "params": json.loads(m.params)} for m in metrics]
        print(json.dumps(record, indent=2, default=str))
        return
    if fmt == "rich":
        for key in fields:
            out.print(f"[bold]{key:>13}[/bold]  {getattr(run, key)}", highlight=False)
        for start in provenance.starts(run.provenance) or [None]:  # the start that created the run first
            text = provenance.describe(start) if start else "not recorded (stored before msda kept provenance)"
            out.print(f"[bold]   provenance[/bold]  {escape(text)}", highlight=False)
            if start:
                out.print(f"[bold]      command[/bold]  {escape(shlex.join(start['command']))}", highlight=False)
        out.print("[bold]       config[/bold]")
        out.print_json(run.config)
    final = frame[frame["epoch"].isna()]
    per_epoch = frame[frame["epoch"].notna()]
    if len(per_epoch):
        wide = per_epoch.pivot_table(index="epoch", columns="name", values="value", aggfunc="last").reset_index()
        wide["epoch"] = wide["epoch"].astype(int) + 1
        print_frame(wide, fmt, title="Per-epoch metrics", console=out)
    if len(final):
        print_frame(final.drop(columns=["epoch"]), fmt, title="Final metrics", console=out)


@runs_app.command("rm")
def runs_rm(
    run_ids: Annotated[Optional[List[str]], typer.Argument(
        help="Run id(s) to delete, with their metrics and files.", autocompletion=completion.run_ids)] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Delete the runs with key=value instead (as in `msda runs list --where`), e.g. tag=demo.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Also delete runs that are still running.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted and delete nothing.")] = False,
    db: DbOption = None,
):
    """Delete runs: their rows, metrics, subsets and run folders (asks first; --yes does not)."""
    import shutil

    if bool(run_ids) == bool(where):
        raise MsdaError("give the run ids to delete or --where key=value, not both")
    if where:
        from msda_cli.report.find import where_mask
        from msda_cli.store.summary import runs_summary

        reader = _store(db, read_only=True)  # a missing database has no runs to delete and is not created
        summary = runs_summary(reader).reset_index(drop=True)
        run_ids = list(summary["id"][where_mask(summary, reader.runs_frame()["config"].reset_index(drop=True), where)])
        if not run_ids:
            out.print(f"no runs with {' '.join(where)}: nothing to delete", markup=False, highlight=False)
            return
    store = _store(db, create=False, read_only=dry_run)
    runs = [store.get_run(r) for r in run_ids]  # all ids valid before anything is deleted
    folders = [store.run_dir(run.id) for run in runs]  # and every folder inside the results directory
    for run in runs:
        if run.status == "running" and not force:
            raise MsdaError(f"run {run.id} is running; stop it first or pass --force")
    listing = "\n".join(f"  {run.id}  {run.name}  ({run.status}, {folder})" for run, folder in zip(runs, folders))
    if dry_run:
        out.print(f"would delete {len(runs)} run(s):\n{listing}", markup=False, highlight=False)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise MsdaError(f"runs rm deletes {len(runs)} run(s) for good; pass --yes to confirm without a terminal")
        out.print(f"{listing}", markup=False, highlight=False)
        if not typer.confirm(f"Delete these {len(runs)} run(s) and their files?", default=False):
            out.print("nothing deleted")
            raise typer.Exit(1)
    from msda_cli.subsets import delete_subset_files

    for run, folder in zip(runs, folders):
        delete_subset_files(store, run.id)
        store.delete_run(run.id)  # a trainer of a --force'd run finds its lease gone and stops
        shutil.rmtree(folder, ignore_errors=True)
        out.print(f"deleted run {run.id} ({run.name})", markup=False, highlight=False)


@runs_app.command("cancel")
def runs_cancel(
    run_ids: Annotated[List[str], typer.Argument(help="Run id(s) whose Slurm jobs to cancel.",
                                                 autocompletion=completion.run_ids)],
    db: DbOption = None,
):
    """Cancel runs' Slurm jobs (scancel); each run stays interrupted, resumable with `msda train --resume ID`."""
    from msda_cli.engine.slurm import cancel

    store = _store(db, create=False)
    for run_id, job in cancel(store, run_ids):
        out.print(f"cancelled Slurm job {job} of run {run_id} ({store.get_run(run_id).status}); continue it with "
                  f"`msda train --resume {run_id}` (add --launcher slurm to queue it again)",
                  markup=False, highlight=False, soft_wrap=True)


@runs_app.command("tag")
def runs_tag(
    run_id: RunIdArgument,
    add: Annotated[Optional[List[str]], typer.Option("--add", help="Tag to add (repeatable).")] = None,
    remove: Annotated[Optional[List[str]], typer.Option("--remove", help="Tag to remove (repeatable).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Also rename the run.")] = None,
    db: DbOption = None,
):
    """Add or remove a run's tags (`msda report --where tag=x`, `msda runs list --where tag=x`)."""
    from msda_cli.store.tags import check_tags, join_tags, split_tags

    added, removed = check_tags(add or []), check_tags(remove or [])
    if not (added or removed or name):
        raise MsdaError("give --add TAG, --remove TAG or --name NAME")
    store = _store(db, create=False)
    run = store.get_run(run_id)
    tags = join_tags(set(split_tags(run.tags)) - set(removed) | set(added))
    store.annotate_run(run.id, tags=tags, **({"name": name} if name else {}))
    out.print(f"run {run.id}: tags {tags or '(none)'}", markup=False, highlight=False)


@runs_app.command("note")
def runs_note(
    run_id: RunIdArgument,
    text: Annotated[str, typer.Argument(help="The note (replaces the run's note; '' clears it).")],
    db: DbOption = None,
):
    """Write a note on a run (shown by `msda runs show`)."""
    store = _store(db, create=False)
    run = store.get_run(run_id)
    store.annotate_run(run.id, note=text)
    out.print(f"run {run.id}: note {'set' if text else 'cleared'}", markup=False, highlight=False)


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[List[str], typer.Argument(help="Two or more run ids (or unique prefixes).",
                                                 autocompletion=completion.run_ids)],
    all_keys: Annotated[bool, typer.Option("--all", help="Show every config key, not only those that differ.")] = False,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Runs side by side: the config keys that differ between them, then their final metrics."""
    from msda_cli.render import check_format, print_frame
    from msda_cli.report.compare import compare_runs

    check_format(fmt)
    if len(run_ids) < 2:
        raise MsdaError("runs compare needs two or more run ids")
    store = _store(db, create=False, read_only=True)
    config, metrics = compare_runs(store, [store.get_run(r) for r in run_ids], all_keys=all_keys)
    print_frame(config, fmt, title="Config" if all_keys else "Config keys that differ", console=out)
    print_frame(metrics, fmt, title="Final metrics", console=out)


@subsets_app.command("list")
def subsets_list(fmt: FormatOption = "rich", db: DbOption = None):
    """Every stored subset: its source run, measure, ratio, size and seed (train on one with --subset ID)."""
    import pandas as pd

    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    store = _store(db, read_only=True)
    columns = ["id", "source_run_id", "measure", "ratio", "size", "seed", "params", "created"]
    frame = pd.DataFrame([{"id": s.id, "source_run_id": s.source_run_id, "measure": s.measure, "ratio": s.ratio,
                           "size": s.size, "seed": s.seed, "params": s.params, "created": str(s.created_at)[:19]}
                          for s in store.list_subsets()], columns=columns)
    print_frame(frame, fmt, title=f"Subsets in {store.where}", console=out)


# ----- recipes --------------------------------------------------------------------------
@recipes_app.command("list")
def recipes_list(fmt: FormatOption = "rich"):
    """Every recipe with its data set, architecture, method and the paper table it reproduces."""
    import pandas as pd

    from msda_cli.config import list_recipe_names, read_recipe
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    rows = []
    for name in list_recipe_names():
        raw = read_recipe(name)
        rows.append({"recipe": name, "dataset": raw.get("dataset", ""), "arch": raw.get("arch", ""),
                     "method": raw.get("method", ""), "epochs": raw.get("epochs", ""),
                     "reproduces": raw.get("paper_table", "")})
    print_frame(pd.DataFrame(rows), fmt, title="Recipes", console=out)


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="Recipe name or YAML file.", autocompletion=completion.recipe_names)],
    resolved: Annotated[bool, typer.Option("--resolved", help="Print the recipe with its bases merged in.")] = False,
):
    """A recipe as written, with the bases it extends (and their comments); --resolved merges them."""
    import yaml

    from msda_cli.config import read_recipe, recipe_chain, validate

    raw = read_recipe(name)
    validate(raw, source=f"recipe {name}")
    if resolved:
        _print_yaml(yaml.safe_dump(raw, sort_keys=False))
        return
    for path in recipe_chain(name):
        out.print(f"# ---- {path}", markup=False, highlight=False)
        _print_yaml(path.read_text())


def _print_yaml(text: str) -> None:
    if out.is_terminal:
        from rich.syntax import Syntax

        out.print(Syntax(text, "yaml", background_color="default"))
    else:
        print(text.rstrip("\n"))
