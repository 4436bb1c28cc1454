"""How a paper table is declared: its paper, metrics, row and column headers, and how each cell's runs are made.

A table is a grid of headers. In a paper table every cell has a plan (`Plan`): the recipe and
overrides that train its runs (`msda train --recipe R --method M --arch A --set K=V`) and the
measurements its metric needs afterwards (`FollowUp`: `msda robust`, `msda subsample`). The
table, its row, its column and the cell itself each give a part of the plan; `TableSpec.cell(row,
col)` joins them, and the cell's run filter is derived from the joined plan's resolved config
(msda_cli.report.plan), never written by hand. Headers made from the data (ad-hoc pivots, the
subset table's measures and ratios) filter runs by `where`: run columns such as `method`, or
dotted config keys such as `mixer.k`.
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


OTHER_SEED = "other-seed"  # a follow-up's `source`: the cell's run of another seed (gray-box attacks)


@dataclass(frozen=True)
class RunOf:
    """A follow-up's `source`: a finished run of this plan (a black-box attack's substitute model), of the cell's
    run's seed; `msda reproduce` plans and trains it beside the table's runs."""

    plan: "Plan"

    def describe(self) -> str:
        return f"<the run of {self.plan.recipe_name}{' --arch ' + self.plan.arch if self.plan.arch else ''}>"


@dataclass(frozen=True)
class FollowUp:
    """A measurement of each finished run of a cell: `msda robust RUN ...` or `msda subsample RUN ...`,
    with that command's options (RobustRequest / subsample option names) as (name, value) pairs."""

    command: str  # "robust" | "subsample"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.options)

    def describe(self) -> str:
        """`robust --attack pgd --eps 8 --source <another seed>`, as a user would type it."""
        words = [self.command]
        for key, value in self.options:
            flag = "--" + key.replace("_", "-")
            if value is True:
                words.append(flag)
            else:
                words += [flag, "<the run of another seed>" if value == OTHER_SEED
                          else value.describe() if isinstance(value, RunOf) else str(value)]
        return " ".join(words)


def robust(**options) -> FollowUp:
    return FollowUp("robust", tuple(options.items()))


@dataclass(frozen=True)
class Plan:
    """How a cell's runs are made, or a part of that (table, row, column, cell); `a | b` joins two parts.

    `recipe` may name the cell's method as `{method}` ("cifar100-{method}"); `sets` are `--set
    key=value` overrides, applied in order (a later part's win). `subsets`: the cell's runs train on
    the subsets this `subsample` follow-up makes of the plan's own runs on the full data.
    `untrainable`: why this tool cannot make the cell's runs (a method or architecture it lacks).
    `grid`: the values the cell's runs take of some keys (msda_cli.grid); its report chooses among them
    (`TableSpec.select_by`).
    """

    recipe: str | None = None
    method: str | None = None
    arch: str | None = None
    sets: tuple[str, ...] = ()
    followups: tuple[FollowUp, ...] = ()
    subsets: FollowUp | None = None
    untrainable: str | None = None
    grid: tuple[str, ...] = ()  # `--grid key=a,b,c`: one planned run per point (a later part's key wins)

    def __or__(self, other: "Plan") -> "Plan":
        later = {g.split("=", 1)[0] for g in other.grid}
        return Plan(recipe=other.recipe or self.recipe, method=other.method or self.method,
                    arch=other.arch or self.arch, sets=self.sets + other.sets,
                    grid=tuple(g for g in self.grid if g.split("=", 1)[0] not in later) + other.grid,
                    followups=self.followups + tuple(f for f in other.followups if f not in self.followups),
                    subsets=other.subsets or self.subsets, untrainable=self.untrainable or other.untrainable)

    @property
    def recipe_name(self) -> str | None:
        return self.recipe.format(method=self.method) if self.recipe else None


@dataclass(frozen=True)
class Header:
    """A row or column: its label (as the paper prints it), its part of the cells' plans (paper
    tables) or its run filter (headers made from the data), and an optional metric."""

    label: str
    where: dict[str, Any] = field(default_factory=dict)
    plan: Plan = field(default_factory=Plan)
    metric: MetricSpec | None = None
    group: str | None = None  # outer row label (e.g. the model in "model x method" tables)
    paper: str | None = None  # the name in paper_values/*.yaml when it differs from label
    derived: tuple[str, str] | None = None  # column = mean(col a) - mean(col b)
    alternative: "Plan | None" = None  # joined to a cell's plan where that has no run (msda_cli.report.alternative)

    @property
    def path(self) -> tuple[str, ...]:
        return (self.group, self.label) if self.group is not None else (self.label,)

    @property
    def paper_path(self) -> tuple[str, ...]:
        name = self.paper or self.label
        return (self.group, name) if self.group is not None else (name,)


@dataclass(frozen=True)
class CellSpec:
    """One cell: its headers, its metric, its plan (None in an ad-hoc pivot) and its headers' filters."""

    row: Header
    col: Header
    metric: MetricSpec
    plan: Plan | None
    where: dict[str, Any]  # the filters of headers made from the data

    @property
    def label(self) -> str:
        return " / ".join((*self.row.path, self.col.label))


@dataclass(frozen=True)
class TableSpec:
    id: str
    source: Paper | None  # None for an ad-hoc pivot
    paper_table: str  # table id inside the paper's values file
    caption: str
    rows: tuple[Header, ...]
    cols: tuple[Header, ...]
    metric: MetricSpec
    row_names: tuple[str, ...] = ("Method",)
    best: str | None = "column"  # "column" | "row" | None
    metrics: dict[str, MetricSpec] = field(default_factory=dict)  # alternatives: --metric NAME
    plan: Plan = field(default_factory=Plan)  # the part of every cell's plan the table gives
    cell_plans: dict[tuple[str, str], Plan] = field(default_factory=dict)  # (row label, col label): the cell's part
    dynamic_rows: str | None = None  # rows = distinct values of this key (when `rows` is empty)
    dynamic_cols: str | None = None
    note: str = ""
    decimals: int = 2
    number: str | None = None  # the table's number as the title prints it (default: paper_table; "": none)
    epoch: str = "final"  # the epoch the paper reports: "final" or "best" (msda_cli.report.epochs)
    epoch_note: str = ""  # the paper's words on it, for the caption
    select_by: str | None = None  # choose each cell's setting by this metric (msda_cli.report.choice) ...
    over: tuple[str, ...] = ()  # ... among its runs' values of these keys
    averages: tuple[str, ...] = ()  # config keys a cell averages over as over seeds (MixupE Table 6's folds)

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
        t = self.number if self.number is not None else self.paper_table
        if not t:  # a table of no paper
            return f"{self.source.short}: {self.caption.split('.')[0]}"
        kind = "Figure" if t.startswith("fig") else "Table"
        return f"{self.source.short} {kind} {t.removeprefix('fig')}: {self.caption.split('.')[0]}"

    def cell(self, row: Header, col: Header) -> CellSpec:
        """The cell (row, col): its metric (column's, row's, else the table's), its plan (the table's,
        row's, column's and its own parts, later ones winning) and its headers' filters."""
        plan = None
        if self.source is not None:
            plan = self.plan | row.plan | col.plan | self.cell_plans.get((row.label, col.label), Plan())
        return CellSpec(row, col, col.metric or row.metric or self.metric, plan, {**row.where, **col.where})

    def cells(self) -> Iterator[CellSpec]:
        """Every declared cell that holds runs (difference columns have none)."""
        for row in self.rows:
            for col in self.cols:
                if not col.derived:
                    yield self.cell(row, col)

    def filter_keys(self) -> set[str]:
        """Every key the table's headers filter on (a plan's keys are its resolved config's)."""
        keys: set[str] = set()
        for h in (*self.rows, *self.cols):
            keys |= set(h.where)
        for k in (self.dynamic_rows, self.dynamic_cols):
            if k:
                keys |= set(k.split(","))
        return keys


# ----- declaration helpers -------------------------------------------------------------------
def methods(*pairs) -> tuple[Header, ...]:
    """Headers from (label, method) or (label, method, extra plan part) tuples."""
    out = []
    for p in pairs:
        label, method, extra = (tuple(p) + (Plan(),))[:3]
        out.append(Header(label, plan=Plan(method=method) | extra))
    return tuple(out)


def archs(*pairs) -> tuple[Header, ...]:
    return tuple(Header(label, plan=Plan(arch=arch)) for label, arch in pairs)


def untrainable(label: str, reason: str, **header) -> Header:
    """A header whose cells the paper fills with a setting this tool cannot train."""
    return Header(label, plan=Plan(untrainable=reason), **header)


def grouped(groups, inner) -> tuple[Header, ...]:
    """Two-level rows: every (group label, group plan part) x inner header."""
    return tuple(Header(h.label, plan=gp | h.plan, group=g, paper=h.paper, metric=h.metric)
                 for g, gp in groups for h in inner)
