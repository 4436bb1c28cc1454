"""The registry of tables: one module per paper (its `PAPER` and its `TABLES`), in paper order, then
msda's own digits table.

Adding a paper is one module here (and its paper_values/<key>.yaml) plus one line below.
"""

from __future__ import annotations

from msda_cli.report.spec import TableSpec
from msda_cli.report.tables import dcutmix, digits, hmix_gmix, mixupe

_MODULES = (hmix_gmix, mixupe, dcutmix, digits)

TABLES: dict[str, TableSpec] = {t.id: t for m in _MODULES for t in m.TABLES}


def list_tables() -> list[TableSpec]:
    """Every table `msda report --table ID` can print, in paper order."""
    return list(TABLES.values())
