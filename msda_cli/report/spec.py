"""How a paper table is declared: its paper, metrics, row and column headers, and the cells they make.

A table is a grid of headers. Each row and column header carries a run filter (`where`: run
columns such as `method`/`arch`/`dataset`, or dotted keys into the resolved config such as
`mixer.k`, `data.options.crop`), and may override the metric (Top-1 / Top-5 columns, one
attack per column). `TableSpec.cell(row, col)` is the one place where a cell's full run
filter is put together; the report build, the benchmark and the tests all read it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from msda_cli import metric_names as names


@dataclass(frozen=True)
class Paper:
    """A paper whose tables the report prints; its published values are paper_values/<key>.yaml."""

    key: str
    title: str
    short: str  # the title's prefix: "MixupE Table 3: ..."
    aliases: tuple[str, ...] = ()  # first words by which recipes' `paper_table` name it


@dataclass(frozen=True)
class MetricSpec:
    """One stored metric (kind + name + parameter filter) and how to show it."""

    name: str
    kind: str | None = names.EVAL
    params: dict[str, Any] = field(default_factory=dict)
    transform: str = "value"  # "value" | "error" (100 - value)
    label: str = ""
    lower_is_better: bool = False
    ratio_to_col: str | None = None  # divide by the mean of this column in the same row

    def key(self) -> tuple:
        return (self.name, self.kind, tuple(sorted((k, repr(v)) for k, v in self.params.items())), self.transform)

    @property
    def option_name(self) -> str:
        """The name `--metric` gives this metric ("error" for top-1 error)."""
        if self.transform == "error":
            return "error" if self.name == names.TOP1 else f"{self.name}_error"
        return self.name


def accuracy(name: str = names.TOP1, label: str = "top-1 accuracy (%)") -> MetricSpec:
    return MetricSpec(name, names.EVAL, label=label)


def error(name: str = names.TOP1, label: str = "top-1 error (%)") -> MetricSpec:
    return MetricSpec(name, names.EVAL, transform="error", label=label, lower_is_better=True)


TOP1_ACC, TOP5_ACC = accuracy(), accuracy(names.TOP5, "top-5 accuracy (%)")
TOP1_ERR, TOP5_ERR = error(), error(names.TOP5, "top-5 error (%)")


@dataclass(frozen=True)
class Header:
    """A row or column: its label (as the paper prints it), run filter, optional metric."""

    label: str
    where: dict[str, Any] = field(default_factory=dict)
    metric: MetricSpec | None = None
    group: str | None = None  # outer row label (e.g. the model in "model x method" tables)
    paper: str | None = None  # the name in paper_values/*.yaml when it differs from label
    derived: tuple[str, str] | None = None  # column = mean(col a) - mean(col b)

    @property
    def path(self) -> tuple[str, ...]:
        return (self.group, self.label) if self.group is not None else (self.label,)

    @property
    def paper_path(self) -> tuple[str, ...]:
        name = self.paper or self.label
        return (self.group, name) if self.group is not None else (name,)


@dataclass(frozen=True)
class CellSpec:
    """One cell: its headers, its metric and what a run must match to count in it."""

    row: Header
    col: Header
    metric: MetricSpec
    where: dict[str, Any]  # the table's, row's, column's and cell-specific filters
    protocol: dict[str, Any]  # the paper's training protocol, on keys `where` does not set

    @property
    def run_filter(self) -> dict[str, Any]:
        """Everything a run must match (the keys of `where` and `protocol` are disjoint)."""
        return {**self.where, **self.protocol}


@dataclass(frozen=True)
class TableSpec:
    id: str
    source: Paper | None  # None for an ad-hoc pivot
    paper_table: str  # table id inside the paper's values file
    caption: str
    where: dict[str, Any]
    rows: tuple[Header, ...]
    cols: tuple[Header, ...]
    metric: MetricSpec
    row_names: tuple[str, ...] = ("Method",)
    best: str | None = "column"  # "column" | "row" | None
    metrics: dict[str, MetricSpec] = field(default_factory=dict)  # alternatives: --metric NAME
    cell_where: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (row label, col label)
    dynamic_rows: str | None = None  # rows = distinct values of this key (when `rows` is empty)
    dynamic_cols: str | None = None
    recipe_hint: str = ""
    note: str = ""
    decimals: int = 2
    number: str | None = None  # the table's number as the title prints it (default: paper_table)
    # the paper's training protocol (epochs, lr, batch size) where two papers train the same data
    # set and architecture differently; `--where KEY=VALUE` on one of these keys replaces it
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def paper_key(self) -> str:
        return self.source.key if self.source else ""

    @property
    def paper(self) -> str:
        return self.source.title if self.source else ""

    @property
    def title(self) -> str:
        """`MixupE Table 3: ImageNet accuracy` (an ad-hoc pivot's caption is its title)."""
        if self.source is None:
            return self.caption
        t = self.number or self.paper_table
        kind = "Figure" if t.startswith("fig") else "Table"
        return f"{self.source.short} {kind} {t.removeprefix('fig')}: {self.caption.split('.')[0]}"

    def cell(self, row: Header, col: Header) -> CellSpec:
        """The cell (row, col): its metric (column's, row's, else the table's) and its run filter."""
        where = {**self.where, **row.where, **col.where, **self.cell_where.get((row.label, col.label), {})}
        protocol = {k: v for k, v in self.protocol.items() if k not in where}
        return CellSpec(row, col, col.metric or row.metric or self.metric, where, protocol)

    def cells(self) -> Iterator[CellSpec]:
        """Every declared cell that holds runs (difference columns have none)."""
        for row in self.rows:
            for col in self.cols:
                if not col.derived:
                    yield self.cell(row, col)

    def filter_keys(self) -> set[str]:
        """Every key any of the table's filters reads."""
        keys = set(self.where) | set(self.protocol)
        for h in (*self.rows, *self.cols):
            keys |= set(h.where)
        for d in self.cell_where.values():
            keys |= set(d)
        for k in (self.dynamic_rows, self.dynamic_cols):
            if k:
                keys |= set(k.split(","))
        return keys


# ----- declaration helpers -------------------------------------------------------------------
def methods(*pairs) -> tuple[Header, ...]:
    """Headers from (label, method) or (label, method, extra-where) tuples."""
    out = []
    for p in pairs:
        label, method, extra = (tuple(p) + ({},))[:3]
        out.append(Header(label, {"method": method, **extra}))
    return tuple(out)


def archs(*pairs) -> tuple[Header, ...]:
    return tuple(Header(label, {"arch": arch}) for label, arch in pairs)


def grouped(groups, inner) -> tuple[Header, ...]:
    """Two-level rows: every (group label, group where) x inner header."""
    return tuple(Header(h.label, {**gw, **h.where}, group=g, paper=h.paper, metric=h.metric)
                 for g, gw in groups for h in inner)
