"""From the store's frame and a table declaration to a Report: filter runs, aggregate cells, compare.

A paper table's cell counts the runs of its plan's setting (`TableSpec.cell`, then
msda_cli.report.plan): same resolved config, seed aside, same data set, architecture and method,
on the full data unless the plan trains on subsets. A `--where KEY=VALUE` replaces the plans'
value of KEY. Runs of the cell's data set, architecture and method under another setting are
left out, named in the caption (the keys that differ) and listed by `--runs`. An ad-hoc pivot's
cell counts the runs its headers and `--where` select, and the caption says where a cell pools
several settings. Only finished runs count unless asked otherwise; a cell is the mean ± sample
std of one value per run. Then come ratio-to-a-column cells, difference columns, published
values, the bold best cells and the caption.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np
import pandas as pd

from msda_cli.errors import MsdaError
from msda_cli.report import alternative
from msda_cli.report.adhoc import pivot_spec
from msda_cli.report import epochs
from msda_cli.report.caption import averaged_over, caption, empty_hint, epoch_notes, selection_notes
from msda_cli.report.choice import Selection, choose, make_selection
from msda_cli.report.epochs import check_epoch
from msda_cli.report.filters import check_keys, parse_where, split_params
from msda_cli.report.frame import FINISHED, Prepared, prepare
from msda_cli.report.labels import ordered, value_label
from msda_cli.report.match import Eq, Match, OneOf, Present, is_missing
from msda_cli.report.paper import lookup_paper
from msda_cli.report.plan import Resolved, resolve
from msda_cli.report.results import Cell, Report
from msda_cli.report.settings import differing_keys, is_setting, setting_text
from msda_cli.report.spec import CellSpec, Header, TableSpec
from msda_cli.report.tables import TABLES


def build_report(frame, table: str | None = None, rows: str = "method", cols: str = "arch",
                 metric: str | None = None, where: Iterable[str] = (), paper: bool = False,
                 include_unfinished: bool = False, show_runs: bool = False, subsets=None,
                 epoch: str | None = None, epoch_rows=None, select_by: str | None = None,
                 over: str | Iterable[str] | None = None) -> Report:
    """A paper table (`table` = an id of `list_tables()`) or an ad-hoc pivot (`rows` x `cols` of `metric`).

    frame: `Store.final_metrics_frame()` (or a Store: it then loads the frame and the subsets).
    rows/cols: run columns (method, arch, dataset, seed, recipe ...), dotted config keys
    (`mixer.alpha`), `subset.measure`, `subset.ratio`; comma-separated for several. metric:
    ad-hoc default `top1`; also `error`, `top5_error`, any stored metric name (`kind:name` to
    pick a kind); for a paper table, one of its metric options (dcutmix-2: `time_ratio`), None
    for its default. where: `key=value` (`key=a,b`, `key!=value`, `params.eps=8` for metric
    settings). Only finished runs count unless include_unfinished. subsets:
    `Store.list_subsets()` (needed for subset.* keys). epoch: `final` or `best` (msda_cli.report.epochs;
    default the table's own, `final` for a pivot), read from `epoch_rows` (the per-epoch rows, or a
    callable returning them; a Store's own). select_by/over: choose each cell's setting (msda_cli.report.choice;
    default the table's own). Raises MsdaError on an unknown table, metric, key or epoch, or bad --where syntax.
    """
    check_epoch(epoch)
    spec = None
    if table is not None:
        spec = TABLES.get(str(table))
        if spec is None:
            raise MsdaError(f"unknown table {table!r}; valid ids: {', '.join(TABLES)}")
    if hasattr(frame, "final_metrics_frame"):  # a Store
        store = frame
        frame = store.final_metrics_frame()
        if subsets is None:
            subsets = store.list_subsets()
        if epoch_rows is None:
            epoch_rows = lambda: epochs.epoch_rows(store)  # noqa: E731 - read only when a best epoch is shown
    shown_epoch = epoch or (spec.epoch if spec is not None else epochs.FINAL)
    n_final = 0
    if shown_epoch == epochs.BEST:
        rows_frame = epoch_rows() if callable(epoch_rows) else epoch_rows
        if rows_frame is None:
            rows_frame = pd.DataFrame(columns=["run_id", "name", "value", "epoch"])
        frame, n_final = epochs.at_best_epoch(frame, rows_frame)
    prep = prepare(frame, subsets)
    user = parse_where(where)
    if spec is None:
        if select_by or over:
            raise MsdaError("--select-by and --over choose among the settings of a paper table's cells (--table ID)")
        spec = pivot_spec(prep, rows, cols, metric, where=user)
        return build_table(prep, spec, None, user, paper, include_unfinished, show_runs, (shown_epoch, n_final))
    selection = make_selection(select_by, over, spec)
    known = spec.filter_keys() | plan_keys(spec)
    check_keys(prep, user, "--where", known=known)
    if selection is not None:
        check_keys(prep, selection.over, "--over", known=known)
    return build_table(prep, spec, metric, user, paper, include_unfinished, show_runs, (shown_epoch, n_final),
                       selection)


def table_plans(spec: TableSpec) -> list[tuple[CellSpec, Resolved | None]]:
    """Every cell that holds runs with its resolved plan (None where the tool cannot train it)."""
    return [(cs, None if cs.plan.untrainable else resolve(cs.plan)) for cs in spec.cells()]


def plan_keys(spec: TableSpec) -> set[str]:
    """The config keys the table's plans set (what a `--where` may replace)."""
    if spec.source is None:
        return set()
    dynamic = spec.dynamic_rows or spec.dynamic_cols  # its cells' plan is the table's
    resolved = [res for _, res in table_plans(spec)] + ([resolve(spec.plan)] if dynamic else [])
    return {k for res in resolved if res is not None for k in res.setting}


@dataclass
class LeftOut:
    """Runs that matched a cell but do not count in it, and cells that pool settings, for the caption."""

    unfinished: set[int] = field(default_factory=set)
    other_setting: set[int] = field(default_factory=set)  # a cell's data set, arch and method, another setting
    other_keys: set[str] = field(default_factory=set)  # the keys those runs differ on from the plan
    mixed: dict[str, list[str]] = field(default_factory=dict)  # cell label -> the keys its runs differ on
    untrainable: dict[str, int] = field(default_factory=dict)  # reason -> cells
    multi_setting: set[str] = field(default_factory=set)  # metrics some run has under several settings
    choices: dict[str, list] = field(default_factory=dict)  # cell label -> its candidate settings (a selection)


class CellRuns:
    """Which runs a cell counts: its plan's setting (paper tables) and its headers' filters, with the
    user's `--where`; the keys the user filters on replace the plans' values of those keys."""

    def __init__(self, prep: Prepared, user_runs: dict[str, Match], counted: np.ndarray,
                 averages: tuple[str, ...] = ()):
        self.prep, self.counted = prep, counted
        self.user_mask = prep.run_mask(user_runs)
        self.averaged = frozenset(averages)  # a cell's runs may differ on these, as on their seeds
        self.drop = frozenset(user_runs) | self.averaged

    def plan_masks(self, res: Resolved, free: frozenset = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """(runs of the plan's setting, runs with the plan's data set, architecture, method and data);
        the keys in `free` (a selection's) may take any value."""
        drop = self.drop | free
        described = {"dataset": res.dataset, "arch": res.arch, "method": res.method,
                     "subset_id": Present() if res.plan.subsets else OneOf(None)}
        described = self.prep.run_mask({k: v for k, v in described.items() if k not in drop})
        return self.prep.setting_mask(setting_text(res.setting, drop), described, drop), described

    def select(self, cs: CellSpec, res: Resolved | None, values: np.ndarray, left_out: LeftOut,
               selection: Selection | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The cell's counted runs and those of another setting it leaves out (positions); records both.
        With a selection, the runs of the one setting it chooses among the cell's candidates."""
        mask = self.user_mask & self.prep.run_mask(cs.where) & ~np.isnan(values)
        other = np.zeros(0, dtype=np.int64)
        if res is not None:
            free = frozenset(selection.over) - self.drop if selection is not None else frozenset()
            same, described = self.plan_masks(res, free)
            other = np.flatnonzero(mask & described & ~same & self.counted)
            left_out.other_setting.update(other.tolist())
            for theirs in self.prep.distinct_settings(other, self.drop | free):
                left_out.other_keys.update(differing_keys(res.setting, theirs, self.drop | free))
            if selection is not None:
                scores, _, _ = self.prep.per_run_values(selection.metric_spec, {})
                chosen, choices = choose(self.prep, np.flatnonzero(mask & same), self.counted, selection, scores)
                left_out.choices[cs.label] = choices
                same = np.zeros(self.prep.n_runs, dtype=bool)
                same[chosen] = True
            mask &= same
        left_out.unfinished.update(np.flatnonzero(mask & ~self.counted).tolist())
        idx = np.flatnonzero(mask & self.counted)
        mixed = self.mixed_keys(idx)
        if mixed:
            left_out.mixed[cs.label] = mixed
        return idx, other

    def mixed_keys(self, idx: np.ndarray) -> list[str]:
        """The keys on which the settings of these runs differ (none if they share one)."""
        first, *others = self.prep.distinct_settings(idx, self.averaged) or [None]
        return sorted({k for theirs in others for k in differing_keys(first, theirs, self.averaged)})


def build_table(prep: Prepared, spec: TableSpec, metric: str | None, user: dict[str, Match], paper: bool,
                include_unfinished: bool, show_runs: bool, epoch: tuple[str, int] = (epochs.FINAL, 0),
                selection: Selection | None = None) -> Report:
    """The Report of one declaration (a paper table, or an ad-hoc pivot: `spec.source` None)."""
    spec, values_table = _with_metric(spec, metric)
    user_runs, user_params = split_params(user)
    finished = prep.columns["status"].to_numpy(dtype=object) == FINISHED
    counted = np.ones(prep.n_runs, dtype=bool) if include_unfinished else finished
    runs = CellRuns(prep, user_runs, counted, spec.averages)
    left_out = LeftOut()
    if spec.dynamic_rows or spec.dynamic_cols:
        spec = _with_dynamic_headers(prep, spec, runs, user_params, finished, left_out)

    cells, raw, filled = [], {}, {}  # filled: the cells each column's alternative setting filled
    for i, rh in enumerate(spec.rows):
        line = []
        for j, ch in enumerate(spec.cols):
            if ch.derived:
                line.append(Cell(derived=True))
                continue
            cs = spec.cell(rh, ch)
            if cs.plan is not None and cs.plan.untrainable:
                left_out.untrainable[cs.plan.untrainable] = left_out.untrainable.get(cs.plan.untrainable, 0) + 1
                raw[(i, j)] = np.zeros(0)
                line.append(Cell())
                continue
            values, counts, n_multi = prep.per_run_values(cs.metric, user_params)
            res, alt = alternative.pick(runs, cs, values)
            if alt:
                filled.setdefault(alternative.describe(cs.col.alternative), []).append(cs.label)
            idx, other = runs.select(cs, res, values, left_out, selection)
            if n_multi and (counts[idx] > 1).any():
                left_out.multi_setting.add(cs.metric.name)
            raw[(i, j)] = values[idx]
            line.append(_cell(values[idx], [str(prep.run_ids[k]) for k in idx],
                              [str(prep.run_ids[k]) for k in other]))
            choices = left_out.choices.get(cs.label, [])
            line[-1].choices = [c.text(spec.decimals) for c in choices] if len(choices) > 1 else []
        cells.append(line)

    notes = []
    if spec.metric.ratio_to_col and _ratio_to_column(cells, raw, spec):
        notes.append(f"Cells whose row has no {spec.metric.ratio_to_col} run have no ratio.")
    _difference_columns(cells, spec.cols)
    has_paper = bool(spec.paper_key) and _published_values(cells, spec, values_table)
    _mark_best(cells, spec, spec.metric.lower_is_better)
    empty = not any(c.n for row in cells for c in row)
    notes += epoch_notes(spec, *epoch) + selection_notes(selection, left_out, averaged_over(spec))
    notes += alternative.notes(filled)
    notes += _notes(spec, left_out, user, include_unfinished, paper and not has_paper)
    if empty:
        notes.insert(0, empty_hint(spec))

    row_names, row_paths = _row_layout(spec)
    report = Report(
        title=spec.title, caption="", row_names=row_names, rows=row_paths,
        columns=[c.label for c in spec.cols], cells=cells, lower_is_better=spec.metric.lower_is_better,
        best_per=spec.best, metric=spec.metric.label or spec.metric.name, table_id=spec.id or None,
        paper=spec.paper if spec.paper_key else None, show_paper=paper and has_paper, show_runs=show_runs,
        decimals=spec.decimals, empty=empty, notes=notes,
    )
    report.caption = caption(report, spec)
    return report


def _with_metric(spec: TableSpec, metric: str | None) -> tuple[TableSpec, str]:
    """The table with `--metric` chosen among its options, and the published-values table to compare with."""
    if metric is None or metric == spec.metric.option_name:
        return spec, spec.paper_table
    if metric in spec.metrics:
        return replace(spec, metric=spec.metrics[metric]), f"{spec.paper_table}:{metric}"
    options = [spec.metric.option_name, *spec.metrics]
    raise MsdaError(f"table {spec.id} has no metric {metric!r}; choose from: {', '.join(options)}")


def _with_dynamic_headers(prep: Prepared, spec: TableSpec, runs: CellRuns, user_params: dict[str, Match],
                          finished: np.ndarray, left_out: LeftOut) -> TableSpec:
    """Rows/columns made from the distinct values among the runs that have the metric (of the table's
    plan's setting, in a paper table)."""
    values, _, _ = prep.per_run_values(spec.metric, user_params)
    base = runs.user_mask & ~np.isnan(values)
    if spec.source is not None:
        base &= np.logical_and(*runs.plan_masks(resolve(spec.plan)))
    candidates = base & runs.counted
    # unfinished runs that would have made a header of their own
    left_out.unfinished.update(np.flatnonzero(base & ~finished).tolist())
    rows = dynamic_headers(prep, spec.dynamic_rows.split(","), candidates) if spec.dynamic_rows else spec.rows
    cols = dynamic_headers(prep, spec.dynamic_cols.split(","), candidates) if spec.dynamic_cols else spec.cols
    return replace(spec, rows=tuple(rows), cols=tuple(cols))


def dynamic_headers(prep: Prepared, keys: list[str], candidates: np.ndarray) -> list[Header]:
    """One header per distinct (combination of) value(s) of `keys` among candidate runs."""
    if not candidates.any():
        return []
    cols = []
    for key in keys:
        col = prep.column(key)
        cols.append(col.to_numpy(dtype=object)[candidates] if col is not None else np.full(candidates.sum(), None))
    combos: dict[tuple, None] = {}
    for combo in zip(*[[None if is_missing(v) else v for v in c] for c in cols]):
        combos.setdefault(combo, None)
    combos_in_order = list(combos)  # by each key's display order, outermost first
    for i in reversed(range(len(keys))):
        rank = {v: r for r, v in enumerate(ordered(keys[i], list(dict.fromkeys(c[i] for c in combos_in_order))))}
        combos_in_order.sort(key=lambda c: rank[c[i]])
    headers = []
    for combo in combos_in_order:
        where = {k: (Eq(v) if v is not None else OneOf(None)) for k, v in zip(keys, combo)}
        labels = [value_label(k, v) for k, v in zip(keys, combo)]
        group = " / ".join(labels[:-1]) if len(labels) > 1 else None
        headers.append(Header(labels[-1], where, group=group))
    return headers


def _cell(values: np.ndarray, run_ids: list[str], left_out: list[str] = ()) -> Cell:
    n = len(values)
    if n == 0:
        return Cell(left_out=list(left_out))
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if n > 1 else None
    return Cell(mean=mean, std=std, n=n, run_ids=run_ids, left_out=list(left_out))


def _ratio_to_column(cells: list[list[Cell]], raw: dict, spec: TableSpec) -> bool:
    """Each run's value / the mean of its row's reference cell (training-time ratio); True if a row had none."""
    ref_j = [c.label for c in spec.cols].index(spec.metric.ratio_to_col)
    dropped = False
    for i in range(len(spec.rows)):
        ref = raw.get((i, ref_j))
        ref_mean = float(np.mean(ref)) if ref is not None and len(ref) else None
        for j in range(len(spec.cols)):
            if (i, j) not in raw or not len(raw[(i, j)]):
                continue
            if ref_mean is None:
                cells[i][j], dropped = Cell(), True
            else:
                cells[i][j] = _cell(raw[(i, j)] / ref_mean, cells[i][j].run_ids, cells[i][j].left_out)
    return dropped


def _difference_columns(cells: list[list[Cell]], cols: tuple[Header, ...]) -> None:
    labels = [c.label for c in cols]
    for j, ch in enumerate(cols):
        if not ch.derived:
            continue
        a, b = (labels.index(x) for x in ch.derived)
        for row in cells:
            if row[a].mean is not None and row[b].mean is not None:
                row[j].mean = row[a].mean - row[b].mean


def _published_values(cells: list[list[Cell]], spec: TableSpec, values_table: str) -> bool:
    """Set each cell's published value and our difference to it; True if the table has any."""
    found = False
    for i, rh in enumerate(spec.rows):
        for j, ch in enumerate(spec.cols):
            p, ps = lookup_paper(spec.paper_key, values_table, rh.paper_path, ch.paper or ch.label)
            c = cells[i][j]
            c.paper, c.paper_std = p, ps
            found |= p is not None
            if p is not None and c.mean is not None:
                c.diff = c.mean - p
    return found


def _mark_best(cells: list[list[Cell]], spec: TableSpec, lower: bool) -> None:
    """Bold the best cell of each column (within a row group) or row, compared as printed."""
    if not spec.best:
        return
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for i, rh in enumerate(spec.rows):
        for j in range(len(spec.cols)):
            c = cells[i][j]
            if c.derived or c.mean is None:
                continue
            key = ("col", j, rh.group) if spec.best == "column" else ("row", i)
            groups.setdefault(key, []).append((i, j))
    for members in groups.values():
        if len(members) < 2:
            continue
        shown = [round(cells[i][j].mean, spec.decimals) for i, j in members]
        target = min(shown) if lower else max(shown)
        for (i, j), v in zip(members, shown):
            cells[i][j].best = v == target


def _row_layout(spec: TableSpec) -> tuple[list[str], list[tuple[str, ...]]]:
    """Row-label column names and every row's label path, padded to the same depth."""
    paths = [h.path for h in spec.rows]
    depth = max((len(p) for p in paths), default=len(spec.row_names))
    paths = [(("",) * (depth - len(p))) + p for p in paths]
    if len(spec.row_names) >= depth:
        names = list(spec.row_names[-depth:])
    else:
        names = [""] * (depth - len(spec.row_names)) + list(spec.row_names)
    return names, paths


MAX_KEYS = 12  # keys named in one note (DCutMix Table 1's left-out runs differ on more than 8)


def _keys_text(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:MAX_KEYS]) + (f" and {len(keys) - MAX_KEYS} more" if len(keys) > MAX_KEYS else "")


def _notes(spec: TableSpec, left_out: LeftOut, user: dict[str, Match], include_unfinished: bool,
           paper_missing: bool) -> list[str]:
    notes = []
    if left_out.multi_setting:
        notes.append(f"Some runs have {', '.join(sorted(left_out.multi_setting))} under several settings (params); "
                     "each such run contributes the mean over its settings - narrow with --where params.KEY=VALUE.")
    if left_out.unfinished and not include_unfinished:
        notes.append(f"{len(left_out.unfinished)} unfinished run(s) (running/failed/interrupted) left out; "
                     "--include-unfinished counts them.")
    if left_out.other_setting:
        notes.append(f"{len(left_out.other_setting)} run(s) of a cell's data set, architecture and method but "
                     f"another setting are left out (keys that differ: {_keys_text(left_out.other_keys)}); "
                     "--runs lists them per cell.")
    if left_out.mixed:
        cells = list(left_out.mixed)
        shown = "; ".join(f"{c} ({_keys_text(left_out.mixed[c])})" for c in cells[:3])
        more = f"; and {len(cells) - 3} more" if len(cells) > 3 else ""
        notes.append(f"{len(cells)} cell(s) pool runs of different settings (keys that differ): {shown}{more}; "
                     "narrow with --where KEY=VALUE.")
    if left_out.untrainable:
        n = sum(left_out.untrainable.values())
        notes.append(f"Not trainable here ({n} cell{'s' if n > 1 else ''}): {'; '.join(left_out.untrainable)}.")
    if include_unfinished:
        notes.append("Includes unfinished runs (running/failed/interrupted).")
    if user:
        replaced = spec.source is not None and any(is_setting(k) for k in user if not k.startswith("params."))
        notes.append("Filter: " + ", ".join(f"{k}={m.describe()}" for k, m in user.items())
                     + (" (in place of the plans' values)" if replaced else "") + ".")
    if paper_missing:
        notes.append("No published values for this table." if spec.source is not None else
                     "--paper applies to paper tables (--table ID); an ad-hoc pivot has no published values.")
    if spec.note:
        notes.append(spec.note)
    return notes
