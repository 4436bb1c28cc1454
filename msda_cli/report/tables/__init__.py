"""The registry of paper tables: one module per paper (its `PAPER` and its `TABLES`), in paper order.

Adding a paper is one module here (and its paper_values/<key>.yaml) plus one line below.
"""

from __future__ import annotations

from msda_cli.report.spec import Paper, TableSpec
from msda_cli.report.tables import dcutmix, hmix_gmix, mixupe

_MODULES = (hmix_gmix, mixupe, dcutmix)

PAPERS: dict[str, Paper] = {m.PAPER.key: m.PAPER for m in _MODULES}
TABLES: dict[str, TableSpec] = {t.id: t for m in _MODULES for t in m.TABLES}


def list_tables() -> list[TableSpec]:
    """Every paper table `msda report --table ID` can print, in paper order."""
    return list(TABLES.values())
