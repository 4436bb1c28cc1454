"""A column that takes either of two settings: its cells' plan, or its `Header.alternative` joined to it.

MixupE Table 8's baselines are Verma et al.'s 1200-epoch models while MixupE's own trained 400 epochs:
the baseline columns plan 400 epochs (what `msda reproduce` trains) and take 1200-epoch runs where a
cell has no run of its plan. A cell still holds one setting, never both: its plan's where that has a
counted run with a value, else the alternative's where that has one; the caption names the cells the
alternative filled.
"""

from __future__ import annotations

import numpy as np

from msda_cli.report.plan import Resolved, resolve
from msda_cli.report.spec import CellSpec, Plan


def pick(runs, cs: CellSpec, values: np.ndarray) -> tuple[Resolved | None, bool]:
    """(the resolved plan the cell counts, whether it is the column's alternative). `runs`: build.CellRuns."""
    if cs.plan is None:
        return None, False
    own = resolve(cs.plan)
    if cs.col.alternative is None or _has_runs(runs, own, cs, values):
        return own, False
    other = resolve(cs.plan | cs.col.alternative)
    return (other, True) if _has_runs(runs, other, cs, values) else (own, False)


def _has_runs(runs, res: Resolved, cs: CellSpec, values: np.ndarray) -> bool:
    same, _ = runs.plan_masks(res)
    mask = same & runs.user_mask & runs.prep.run_mask(cs.where) & runs.counted & ~np.isnan(values)
    return bool(mask.any())


def describe(plan: Plan) -> str:
    """The alternative as the keys it sets: `epochs=1200, schedule.milestones=[400, 800]`."""
    return ", ".join(plan.sets) or plan.recipe_name or ""


def notes(filled: dict[str, list[str]]) -> list[str]:
    """The caption's sentence per alternative: which cells it filled ({alternative text: cell labels})."""
    return [f"Filled by the alternative setting {text}: {', '.join(cells)}." for text, cells in filled.items()]
