"""What a report build returns: a grid of cells with their means, spreads, runs and published values."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cell:
    mean: float | None = None
    std: float | None = None  # sample std over runs (ddof=1); None for one run
    n: int = 0
    run_ids: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # runs of the cell's data set, arch, method, other setting
    paper: float | None = None
    paper_std: float | None = None
    diff: float | None = None  # mean - paper
    best: bool = False
    derived: bool = False  # a difference column (no runs of its own)
    choices: list[str] = field(default_factory=list)  # a selection's candidate settings, the chosen one marked *


@dataclass
class Report:
    title: str
    caption: str
    row_names: list[str]
    rows: list[tuple[str, ...]]
    columns: list[str]
    cells: list[list[Cell]]
    lower_is_better: bool
    best_per: str | None
    metric: str
    table_id: str | None = None
    paper: str | None = None
    show_paper: bool = False
    show_runs: bool = False
    decimals: int = 2
    empty: bool = False
    notes: list[str] = field(default_factory=list)

    def cell(self, row: str | tuple, col: str) -> Cell:
        """The cell at a row label (or label path) and column label."""
        key = (row,) if isinstance(row, str) else tuple(row)
        for i, r in enumerate(self.rows):
            if r == key or r[-1:] == key:
                return self.cells[i][self.columns.index(col)]
        raise KeyError(row)

    @property
    def seed_counts(self) -> list[int]:
        return [c.n for row in self.cells for c in row if c.n and not c.derived]
