"""The results store itself: msda store copy."""

from __future__ import annotations

import typer
from typing_extensions import Annotated

from msda_cli.cli.common import _progress, _store, app, out

store_app = typer.Typer(help="The results store itself: copy runs between stores (SQLite, PostgreSQL).",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")

_DB_HELP = "a SQLite file or a PostgreSQL URL, postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE"


@store_app.command("copy")
def copy(
    source: Annotated[str, typer.Option("--from", help=f"The store to copy from ({_DB_HELP}); only read.")],
    target: Annotated[str, typer.Option("--to", help=f"The store to copy into ({_DB_HELP}); created if new.")],
):
    """Copy every run, metric and subset of one store into another, adding only what it lacks.

    All of it lands in one transaction (a failed copy writes nothing), and a second copy adds nothing;
    a run both stores hold gets the epochs and final metrics it lacks. Checkpoints and subset index
    files are not copied: the rows keep their paths (the checkpoint and indices_path columns), which
    point into the source's results folder (MSDA_RESULTS, or the SQLite file's folder); copy that
    folder too, or keep it on a filesystem both sides share, to resume, measure or train on them.

    \b
    Example (a laptop's results into the cluster's store):
      msda store copy --from results/msda.db --to postgresql+psycopg://me@db.cluster/msda
    """
    from msda_cli.store.copy import copy_store

    reader = _store(source, create=False, read_only=True)
    writer = _store(target)
    with _progress() as progress:
        task = progress.add_task("copying runs", total=None)
        summary = copy_store(reader, writer, lambda done, total: progress.update(task, completed=done, total=total))
    out.print(summary.line(reader.where, writer.where), markup=False, highlight=False, soft_wrap=True)
