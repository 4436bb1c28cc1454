"""What the shell completes (`msda --install-completion`): recipe names and stored run ids.

The completers read only: the recipes folder, and the store opened read-only (a missing database
completes nothing and is not created).
"""

from __future__ import annotations

import typer

from msda_cli.errors import MsdaError


def recipe_names(incomplete: str) -> list[str]:
    from msda_cli.config import list_recipe_names

    return [name for name in list_recipe_names() if name.startswith(incomplete)]


def run_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """(id, what the run is) of the stored runs whose id starts with `incomplete`, in the --db given."""
    from msda_cli.store import Store

    try:
        store = Store(ctx.params.get("db"), read_only=True)
        runs = store.list_runs()
    except (MsdaError, OSError):  # no usable store: nothing to offer
        return []
    return [(r.id, f"{r.method} {r.arch} seed {r.seed} {r.status}") for r in runs if r.id.startswith(incomplete)]



def choices(values, many: bool = False):
    """A completer offering `values` (a set from msda_cli.choices); `many`: after a comma too (`cv,me<TAB>`)."""
    values = tuple(map(str, values))

    def complete(incomplete: str) -> list[str]:
        head, _, last = incomplete.rpartition(",") if many else ("", "", incomplete)
        return [f"{head},{v}" if head else v for v in values if v.startswith(last)]

    return complete
