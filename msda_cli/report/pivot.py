"""From the store's final-metrics frame to a Report: filter runs, pick metrics, aggregate cells.

The frame (one row per final metric, joined with its run) is turned once into a run table
(run columns + the flattened resolved config + subset columns) and a metric table; both are
cached per frame object, so building every paper table from one frame parses JSON once.
Filters become boolean masks over runs; each cell is `row mask & column mask` picked out of
one per-run value vector, so a cell costs a few numpy operations whatever the store's size.
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import yaml

from msda_cli.errors import MsdaError
from msda_cli.report.match import Eq, Match, Not, OneOf, as_matcher, as_number, is_missing
from msda_cli.report.specs import (
    KEY_LABELS, MEASURE_LABELS, TABLES, VALUE_LABELS, Header, MetricSpec, TableSpec,
)

RUN_COLUMNS = ("run_id", "name", "recipe", "dataset", "arch", "method", "seed", "status", "subset_id")
FINISHED = "finished"
PAPER_DIR = Path(__file__).resolve().parent / "paper_values"
KIND_PREFERENCE = ("eval", "robust", "train", "subsample", "analysis")
DERIVED_METRICS = {  # ad-hoc names that are not stored as such
    "error": ("top1", "error"), "top1_error": ("top1", "error"), "top5_error": ("top5", "error"),
}
METRIC_LABELS = {
    "top1": "top-1 accuracy (%)", "top5": "top-5 accuracy (%)", "nll": "test NLL", "ece": "ECE (%)",
    "error": "top-1 error (%)", "top1_error": "top-1 error (%)", "top5_error": "top-5 error (%)",
    "train_time_s": "training time (s)", "images_per_s": "training throughput (images/s)",
}
# metric parameters that record how much was evaluated, not what: a re-run with another count
# replaces the earlier value instead of counting as another setting
BOOKKEEPING_PARAMS = frozenset({"n_examples", "n_in", "n_out", "dataset_dir"})
LOWER_IS_BETTER_WORDS = ("error", "nll", "ece", "loss", "time")


# ----- the result ---------------------------------------------------------------------
@dataclass
class Cell:
    mean: float | None = None
    std: float | None = None  # sample std over runs (ddof=1); None for one run
    n: int = 0
    run_ids: list[str] = field(default_factory=list)
    paper: float | None = None
    paper_std: float | None = None
    diff: float | None = None  # mean - paper
    best: bool = False
    derived: bool = False  # a difference column (no runs of its own)


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


# ----- preparing a frame ----------------------------------------------------------------
class Prepared:
    """The frame split into runs (one row each, flattened config) and metrics (run position)."""

    def __init__(self, frame: pd.DataFrame, subsets: pd.DataFrame | None):
        missing = [c for c in ("run_id", "kind", "metric", "value", "params", "metric_at", "status", "config")
                   if c not in frame.columns]
        if missing:
            raise MsdaError(f"report input lacks columns {missing}; pass Store.final_metrics_frame()")
        first = frame.drop_duplicates("run_id")
        run_ids = first["run_id"].to_numpy(dtype=object)
        self.n_runs = len(run_ids)
        self.run_ids = run_ids
        cols: dict[str, pd.Series] = {}
        for c in RUN_COLUMNS:
            if c in first.columns:
                cols[c] = pd.Series(first[c].to_numpy(dtype=object), dtype=object)
        cols["id"] = cols["run_id"]
        self.columns = cols
        self._configs = _parse_all(first["config"].to_numpy(dtype=object))  # one dict per run
        self._config_cols: dict[str, pd.Series | None] = {}
        self._config_keys: list[str] | None = None
        self.subset = _subset_columns(cols.get("subset_id"), subsets)
        pos = pd.Index(run_ids).get_indexer(frame["run_id"])
        self.metrics = pd.DataFrame({
            "pos": pos, "kind": frame["kind"].to_numpy(dtype=object), "name": frame["metric"].to_numpy(dtype=object),
            "value": pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float),
            "params": frame["params"].fillna("{}").to_numpy(dtype=object),
            "at": frame["metric_at"].astype(str).to_numpy(dtype=object),
        })
        self.metrics["order"] = np.arange(len(self.metrics))
        pairs = self.metrics[["kind", "name"]].drop_duplicates()
        self.metric_pairs: list[tuple[str, str]] = list(zip(pairs["kind"], pairs["name"]))
        self._groups: dict[tuple[str, str], pd.DataFrame] = {}
        self._params: dict[tuple, pd.DataFrame] = {}
        self._mask_cache: dict[tuple, np.ndarray] = {}
        self._values_cache: dict[tuple, tuple] = {}
        self._param_keys: frozenset | None = None
        self._settings: dict[str, str] = {}

    # -- keys --------------------------------------------------------------------------
    def run_keys(self) -> set[str]:
        return set(self.columns) | set(self.config_keys()) | set(self.subset)

    def config_keys(self) -> list[str]:
        """Every dotted key of any run's config (computed only for error messages)."""
        if self._config_keys is None:
            keys: dict[str, None] = {}
            for d in {id(d): d for d in self._configs}.values():
                keys.update(dict.fromkeys(_flatten(d)))
            self._config_keys = sorted(keys)
        return self._config_keys

    def column(self, key: str) -> pd.Series | None:
        """Values of a run-level key (run column, subset.*, or dotted config key), or None if unknown."""
        if key in self.columns:
            return self.columns[key]
        if key in self.subset:
            return self.subset[key]
        k = key.removeprefix("config.")
        if k not in self._config_cols:
            self._config_cols[k] = _config_column(self._configs, k)
        return self._config_cols[k]

    def has_key(self, key: str) -> bool:
        if key.startswith("params."):
            return key.removeprefix("params.") in self.all_param_keys()
        return self.column(key) is not None

    def all_param_keys(self) -> frozenset:
        if self._param_keys is not None:
            return self._param_keys
        keys: set[str] = set()
        for text in pd.unique(self.metrics["params"]):
            try:
                keys.update(_flatten(json.loads(text)).keys())
            except (TypeError, ValueError):
                pass
        self._param_keys = frozenset(keys)
        return self._param_keys

    def metric_names(self) -> list[str]:
        return sorted({name for _, name in self.metric_pairs})

    def group(self, kind: str, name: str) -> pd.DataFrame | None:
        """The metric rows of one (kind, name), or None."""
        if (kind, name) not in self._groups:
            if (kind, name) in self.metric_pairs:
                m = self.metrics
                self._groups[(kind, name)] = m[(m["kind"].to_numpy() == kind) & (m["name"].to_numpy() == name)]
            else:
                self._groups[(kind, name)] = None
        return self._groups[(kind, name)]

    # -- masks ------------------------------------------------------------------------
    def run_mask(self, where: dict[str, Any]) -> np.ndarray:
        """Runs passing every run-level filter (params.* keys are ignored here)."""
        mask = np.ones(self.n_runs, dtype=bool)
        for key, value in where.items():
            if key.startswith("params."):
                continue
            matcher = as_matcher(value)
            ck = (key, matcher)
            m = self._mask_cache.get(ck)
            if m is None:
                m = matcher.mask(self.column(key), self.n_runs)
                self._mask_cache[ck] = m
            mask &= m
        return mask

    def metric_rows(self, ms: MetricSpec, extra_params: dict[str, Match]) -> pd.DataFrame:
        """The rows of one metric (kind, name, parameter filters), latest value per (run, setting)."""
        if ms.kind is None:
            groups = [self.group(k, n) for (k, n) in self.metric_pairs if n == ms.name]
        else:
            g = self.group(ms.kind, ms.name)
            groups = [g] if g is not None else []
        if not groups:
            return self.metrics.iloc[:0]
        rows = pd.concat(groups) if len(groups) > 1 else groups[0]
        filters = {**ms.params, **extra_params}
        if filters:
            params = self._params_frame(ms.kind, ms.name, rows)
            mask = np.ones(len(rows), dtype=bool)
            for key, value in filters.items():
                col = params[key] if key in params.columns else None
                mask &= as_matcher(value).mask(col, len(rows))
            rows = rows[mask]
        # re-evaluation: keep the latest value of each (run, setting); sample counts are not settings
        rows = rows.sort_values(["at", "order"], kind="stable")
        settings = rows["params"].map(self._setting)
        return rows[~pd.DataFrame({"p": rows["pos"], "k": rows["kind"], "s": settings}).duplicated(keep="last")]

    def _setting(self, text: str) -> str:
        hit = self._settings.get(text)
        if hit is None:
            try:
                d = json.loads(text) if text else {}
                d = {k: v for k, v in d.items() if k not in BOOKKEEPING_PARAMS} if isinstance(d, dict) else d
                hit = json.dumps(d, sort_keys=True)
            except ValueError:
                hit = text
            self._settings[text] = hit
        return hit

    def _params_frame(self, kind, name, rows: pd.DataFrame) -> pd.DataFrame:
        key = (kind, name)
        frame = self._params.get(key)
        if frame is None or len(frame) != len(rows):
            frame = _flatten_frame(rows["params"].to_numpy(dtype=object))
            frame.index = rows.index
            self._params[key] = frame
        return frame

    def per_run_values(self, ms: MetricSpec, extra_params: dict[str, Match]) -> tuple[np.ndarray, np.ndarray, int]:
        """(value per run (NaN where none), number of settings per run, runs with >1 setting)."""
        ck = (ms.key(), tuple(sorted((k, repr(v)) for k, v in extra_params.items())))
        hit = self._values_cache.get(ck)
        if hit is not None:
            return hit
        rows = self.metric_rows(ms, extra_params)
        values = np.full(self.n_runs, np.nan)
        counts = np.zeros(self.n_runs, dtype=int)
        if len(rows):
            v = rows["value"].to_numpy()
            if ms.transform == "error":
                v = 100.0 - v
            pos = rows["pos"].to_numpy()
            sums = np.bincount(pos, weights=v, minlength=self.n_runs)
            counts = np.bincount(pos, minlength=self.n_runs)
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        out = (values, counts, int((counts > 1).sum()))
        self._values_cache[ck] = out
        return out


_PREPARED: dict[tuple, tuple] = {}


def prepare(frame: pd.DataFrame, subsets=None) -> Prepared:
    """A Prepared for `frame`, cached while the frame object lives."""
    sub = _subsets_frame(subsets)
    key = (id(frame), id(subsets))
    hit = _PREPARED.get(key)
    if hit is not None and hit[0]() is frame and hit[2] == len(frame):
        return hit[1]
    for k in [k for k, v in _PREPARED.items() if v[0]() is None]:
        del _PREPARED[k]
    prep = Prepared(frame, sub)
    _PREPARED[key] = (weakref.ref(frame), prep, len(frame))
    return prep


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                out.update(_flatten(v, name + "."))
            elif isinstance(v, (list, tuple, dict)):
                out[name] = json.dumps(v, sort_keys=True)
            else:
                out[name] = v
    return out


_ABSENT = object()


def _parse_all(texts: np.ndarray) -> list[dict]:
    """json.loads of each config text (identical texts parsed once and shared)."""
    cache: dict[str, dict] = {}
    out = []
    for t in texts:
        d = cache.get(t) if isinstance(t, str) else None
        if d is None:
            try:
                d = json.loads(t) if isinstance(t, str) and t else {}
            except ValueError:
                d = {}
            if not isinstance(d, dict):
                d = {}
            if isinstance(t, str):
                cache[t] = d
        out.append(d)
    return out


def _config_column(configs: list[dict], dotted: str) -> pd.Series | None:
    """The value at a dotted key in every config (lists/sections as JSON text); None if no run has it."""
    parts = dotted.split(".")
    values, seen = [], False
    memo: dict[int, Any] = {}
    for d in configs:
        v = memo.get(id(d), _ABSENT)
        if v is _ABSENT:
            node: Any = d
            for part in parts:
                if isinstance(node, dict) and part in node:
                    node = node[part]
                else:
                    node = _ABSENT
                    break
            if isinstance(node, (dict, list, tuple)):
                node = json.dumps(node, sort_keys=True)
            memo[id(d)] = v = node
        if v is _ABSENT:
            values.append(None)
        else:
            seen = True
            values.append(v)
    return pd.Series(values, dtype=object) if seen else None


def _flatten_frame(texts: np.ndarray) -> pd.DataFrame:
    cache: dict[str, dict] = {}
    records = []
    for t in texts:
        rec = cache.get(t) if isinstance(t, str) else None
        if rec is None:
            try:
                rec = _flatten(json.loads(t)) if isinstance(t, str) and t else {}
            except ValueError:
                rec = {}
            if isinstance(t, str):
                cache[t] = rec
        records.append(rec)
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return df.astype(object) if len(df.columns) else pd.DataFrame(index=range(len(records)))


def _subsets_frame(subsets) -> pd.DataFrame | None:
    if subsets is None:
        return None
    if isinstance(subsets, pd.DataFrame):
        return subsets
    rows = []
    for s in subsets:
        d = s.model_dump() if hasattr(s, "model_dump") else dict(s)
        rows.append(d)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["id", "measure", "ratio", "seed", "size", "params"])


def _subset_columns(subset_ids: pd.Series | None, subsets: pd.DataFrame | None) -> dict[str, pd.Series]:
    """subset.measure / ratio / seed / size / <params> / label for each run (missing where none)."""
    if subsets is None or subset_ids is None or not len(subsets):
        return {}
    info: dict[str, dict[str, Any]] = {}
    for rec in subsets.to_dict("records"):
        d = {k: rec.get(k) for k in ("measure", "ratio", "seed", "size", "source_run_id")}
        params = rec.get("params")
        try:
            extra = _flatten(json.loads(params)) if isinstance(params, str) and params else {}
        except ValueError:
            extra = {}
        for k, v in extra.items():
            d.setdefault(k, v)
        d["label"] = subset_label(d)
        info[rec["id"]] = d
    keys = sorted({k for d in info.values() for k in d})
    ids = subset_ids.to_numpy(dtype=object)
    return {f"subset.{k}": pd.Series([info.get(i, {}).get(k) if isinstance(i, str) else None for i in ids],
                                     dtype=object) for k in keys}


def subset_label(d: dict) -> str:
    """A subset's row label: its measure, and which end / how it was selected when recorded."""
    label = MEASURE_LABELS.get(str(d.get("measure")), str(d.get("measure")))
    extras = [str(d[k]) for k in ("order", "select") if d.get(k) not in (None, "", "top")]
    return f"{label} ({', '.join(extras)})" if extras else label


# ----- --where ------------------------------------------------------------------------
WHERE_RE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(!=|=)(.*)$")


def parse_where(items: Iterable[str]) -> dict[str, Match]:
    """`key=value` (`key=a,b` for any of, `key!=value` for not); MsdaError on bad syntax."""
    out: dict[str, Match] = {}
    for item in items or ():
        m = WHERE_RE.match(item or "")
        if not m or not m.group(3).strip():
            raise MsdaError(f"--where expects key=value (e.g. mixer.r=0.5 or method=mixup,cutmix), got {item!r}")
        key, op, text = m.group(1), m.group(2), m.group(3).strip()
        parts = [p.strip() for p in text.split(",") if p.strip()]
        matcher: Match = Eq(parts[0]) if len(parts) == 1 else OneOf(*parts)
        if op == "!=":
            matcher = Not(matcher)
        if key in out:
            raise MsdaError(f"--where gives {key!r} twice; use {key}=a,b for either value")
        out[key] = matcher
    return out


def check_keys(prep: Prepared, keys: Iterable[str], what: str, known: Iterable[str] = ()) -> None:
    known = set(known)
    for key in keys:
        if key in known or prep.has_key(key):
            continue
        run_keys = sorted(set(prep.columns) | set(prep.subset))
        cfg_keys = [k for k in prep.config_keys() if k not in run_keys]
        hint = ", ".join(run_keys + cfg_keys[:15]) + (", ..." if len(cfg_keys) > 15 else "")
        raise MsdaError(f"{what}: unknown key {key!r} (in no run's columns, config or metric parameters); "
                        f"known keys include: {hint or 'none (the store has no runs)'}")


# ----- paper values ----------------------------------------------------------------------
@lru_cache(maxsize=None)
def paper_values(paper_key: str) -> dict:
    path = PAPER_DIR / f"{paper_key}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {"tables": {}}


def parse_paper_value(v: Any) -> tuple[float | None, float | None]:
    """73.23 -> (73.23, None); "4.71 ± 0.062" -> (4.71, 0.062); null -> (None, None)."""
    if v is None:
        return None, None
    if isinstance(v, (int, float)):
        return float(v), None
    text = str(v).replace("+-", "±")
    if "±" in text:
        a, b = text.split("±", 1)
        return float(a), float(b)
    n = as_number(text.strip())
    return n, None


def lookup_paper(paper_key: str, table: str, path: tuple[str, ...], col: str) -> tuple[float | None, float | None]:
    node: Any = paper_values(paper_key).get("tables", {}).get(table, {}).get("values", {})
    for part in (*path, col):
        if not isinstance(node, dict) or part not in node:
            return None, None
        node = node[part]
    return parse_paper_value(node)


# ----- building -------------------------------------------------------------------------
def resolve_metric(prep: Prepared, name: str) -> MetricSpec:
    """An ad-hoc metric name: a stored metric (optionally `kind:name`) or error/top5_error."""
    kind, _, base = name.rpartition(":")
    kind = kind or None
    if base in DERIVED_METRICS and kind in (None, "eval"):
        stored, transform = DERIVED_METRICS[base]
        return MetricSpec(stored, "eval", transform=transform, label=METRIC_LABELS[base], lower_is_better=True)
    kinds = [k for (k, n) in prep.metric_pairs if n == base and (kind is None or k == kind)]
    known_eval = base in ("top1", "top5", "nll", "ece") and kind in (None, "eval")
    if not kinds and not known_eval:
        present = prep.metric_names()
        raise MsdaError(f"unknown metric {name!r}; metrics in the store: {', '.join(present) or 'none'}; "
                        f"also: {', '.join(DERIVED_METRICS)}")
    if kind is None:
        kinds.sort(key=lambda k: KIND_PREFERENCE.index(k) if k in KIND_PREFERENCE else 99)
        kind = kinds[0] if kinds else "eval"
    lower = any(w in base for w in LOWER_IS_BETTER_WORDS)
    return MetricSpec(base, kind, label=METRIC_LABELS.get(base, base), lower_is_better=lower)


def value_label(key: str, value: Any) -> str:
    if is_missing(value):
        return "(none)"
    labels = VALUE_LABELS.get(key)
    if labels and value in labels:
        return labels[value]
    if key == "subset.ratio":
        return f"t = {_num_text(value)}"
    return _num_text(value)


def _num_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    n = as_number(v)
    if n is not None and not isinstance(v, str):
        return str(int(n)) if float(n).is_integer() else f"{n:g}"
    return str(v)


def _order(key: str, values: list) -> list:
    from msda_cli.report.specs import ARCH_LABELS, DATASET_LABELS, METHOD_LABELS

    canon = {"method": list(METHOD_LABELS), "arch": list(ARCH_LABELS), "dataset": list(DATASET_LABELS),
             "subset.measure": list(MEASURE_LABELS)}.get(key)
    present = [v for v in values if not is_missing(v)]
    tail = [v for v in values if is_missing(v)][:1]
    if key == "subset.label":  # "CV (high)": the measure's order, then the label
        names = list(MEASURE_LABELS.values())
        present.sort(key=lambda v: (names.index(str(v).split(" ")[0]) if str(v).split(" ")[0] in names
                                    else len(names), str(v)))
    elif canon:
        present.sort(key=lambda v: (canon.index(v) if v in canon else len(canon), str(v)))
    elif present and all(as_number(v) is not None for v in present):
        present.sort(key=lambda v: as_number(v))
    else:
        present.sort(key=str)
    return present + tail


def dynamic_headers(prep: Prepared, keys: list[str], candidates: np.ndarray) -> list[Header]:
    """One header per distinct (combination of) value(s) of `keys` among candidate runs."""
    if not candidates.any():
        return []
    cols = []
    for key in keys:
        col = prep.column(key)
        cols.append(col.to_numpy(dtype=object)[candidates] if col is not None else np.full(candidates.sum(), None))
    combos: dict[tuple, None] = {}
    norm = [[None if is_missing(v) else v for v in c] for c in cols]
    for combo in zip(*norm):
        combos.setdefault(combo, None)
    # order by each key's canonical order, outermost first
    ordered = list(combos)
    for i in reversed(range(len(keys))):
        rank = {v: r for r, v in enumerate(_order(keys[i], list(dict.fromkeys(c[i] for c in ordered))))}
        ordered.sort(key=lambda c: rank[c[i]])
    headers = []
    for combo in ordered:
        where = {k: (Eq(v) if v is not None else OneOf(None)) for k, v in zip(keys, combo)}
        labels = [value_label(k, v) for k, v in zip(keys, combo)]
        group = " / ".join(labels[:-1]) if len(labels) > 1 else None
        headers.append(Header(labels[-1], where, group=group))
    return headers


def build(frame, table: str | None = None, rows: str = "method", cols: str = "arch", metric: str | None = None,
          where: Iterable[str] = (), paper: bool = False, include_unfinished: bool = False,
          show_runs: bool = False, subsets=None) -> Report:
    if hasattr(frame, "final_metrics_frame"):  # a Store
        store = frame
        frame = store.final_metrics_frame()
        if subsets is None:
            subsets = store.list_subsets()
    prep = prepare(frame, subsets)
    user = parse_where(where)
    if table is not None:
        spec = TABLES.get(str(table))
        if spec is None:
            raise MsdaError(f"unknown table {table!r}; valid ids: {', '.join(TABLES)}")
        check_keys(prep, user, "--where", known=_spec_keys(spec))
        return _build_table(prep, spec, metric, user, paper, include_unfinished, show_runs)
    row_keys = [k.strip() for k in (rows or "").split(",") if k.strip()]
    col_keys = [k.strip() for k in (cols or "").split(",") if k.strip()]
    if not row_keys or not col_keys:
        raise MsdaError("--rows and --cols each need at least one key (e.g. --rows method --cols arch)")
    check_keys(prep, user, "--where")
    for k in (*row_keys, *col_keys):
        if k.startswith("params."):
            raise MsdaError(f"--rows/--cols take run or config keys, not metric settings ({k}); "
                            f"filter settings with --where {k}=VALUE")
    check_keys(prep, row_keys, "--rows")
    check_keys(prep, col_keys, "--cols")
    ms = resolve_metric(prep, metric or "top1")
    spec = TableSpec(
        id="", paper_key="", paper_table="", where={}, rows=(), cols=(), metric=ms,
        caption=f"{ms.label[:1].upper()}{ms.label[1:]} by {_key_label(row_keys)} and {_key_label(col_keys)}",
        row_names=tuple(KEY_LABELS.get(k, k) for k in row_keys[-2:]) if len(row_keys) > 1
        else (KEY_LABELS.get(row_keys[0], row_keys[0]),),
        dynamic_rows=",".join(row_keys), dynamic_cols=",".join(col_keys),
        recipe_hint="", best="column",
    )
    if len(row_keys) > 2:
        spec = _replace(spec, row_names=(" / ".join(KEY_LABELS.get(k, k) for k in row_keys[:-1]),
                                         KEY_LABELS.get(row_keys[-1], row_keys[-1])))
    report = _build_table(prep, spec, None, user, paper, include_unfinished, show_runs, adhoc=True)
    return report


def _replace(spec, **kw):
    from dataclasses import replace

    return replace(spec, **kw)


def _key_label(keys: list[str]) -> str:
    return " × ".join(KEY_LABELS.get(k, k).lower() if k in KEY_LABELS else k for k in keys)


def _spec_keys(spec: TableSpec) -> set[str]:
    keys = set(spec.where) | set(spec.protocol)
    for h in (*spec.rows, *spec.cols):
        keys |= set(h.where)
    for d in spec.cell_where.values():
        keys |= set(d)
    for k in (spec.dynamic_rows, spec.dynamic_cols):
        if k:
            keys |= set(k.split(","))
    return keys


def _build_table(prep: Prepared, spec: TableSpec, metric: str | None, user: dict[str, Match], paper: bool,
                 include_unfinished: bool, show_runs: bool, adhoc: bool = False) -> Report:
    base_metric = spec.metric
    paper_table = spec.paper_table
    if metric is not None and not adhoc:
        default_name = _metric_option_name(spec.metric)
        if metric in spec.metrics:
            base_metric = spec.metrics[metric]
            paper_table = f"{spec.paper_table}:{metric}"
        elif metric != default_name:
            options = [default_name, *spec.metrics]
            raise MsdaError(f"table {spec.id} has no metric {metric!r}; choose from: {', '.join(options)}")
    user_params = {k.removeprefix("params."): v for k, v in user.items() if k.startswith("params.")}
    user_runs = {k: v for k, v in user.items() if not k.startswith("params.")}

    status = prep.columns["status"].to_numpy(dtype=object)
    finished = status == FINISHED
    protocol = {k: v for k, v in spec.protocol.items() if k not in user_runs}
    core = prep.run_mask(spec.where) & prep.run_mask(user_runs)
    proto_mask = prep.run_mask(protocol)
    base = core & proto_mask

    def metric_of(row: Header, col: Header) -> MetricSpec:
        return col.metric or row.metric or base_metric

    row_headers, col_headers = list(spec.rows), list(spec.cols)
    if spec.dynamic_rows or spec.dynamic_cols:
        values, _, _ = prep.per_run_values(base_metric, user_params)
        cand = base & ~np.isnan(values) & (finished if not include_unfinished else True)
        if spec.dynamic_rows:
            row_headers = dynamic_headers(prep, spec.dynamic_rows.split(","), cand)
        if spec.dynamic_cols:
            col_headers = dynamic_headers(prep, spec.dynamic_cols.split(","), cand)
    ok_status = np.ones(prep.n_runs, dtype=bool) if include_unfinished else finished

    cells: list[list[Cell]] = []
    notes: list[str] = []
    multi_setting: set[str] = set()
    excluded: set[int] = set()
    raw: dict[tuple[int, int], np.ndarray] = {}
    other_protocol: set[int] = set()
    for i, rh in enumerate(row_headers):
        rmask = core & prep.run_mask(rh.where)
        line = []
        for j, ch in enumerate(col_headers):
            if ch.derived:
                line.append(Cell(derived=True))
                continue
            ms = metric_of(rh, ch)
            values, counts, n_multi = prep.per_run_values(ms, user_params)
            mask = rmask & prep.run_mask(ch.where)
            extra = spec.cell_where.get((rh.label, ch.label))
            if extra:
                mask &= prep.run_mask(extra)
            mask &= ~np.isnan(values)
            if protocol:
                other_protocol.update(np.flatnonzero(mask & ok_status & ~proto_mask).tolist())
                mask &= proto_mask
            excluded.update(np.flatnonzero(mask & ~ok_status).tolist())
            mask &= ok_status
            idx = np.flatnonzero(mask)
            if n_multi and (counts[idx] > 1).any():
                multi_setting.add(ms.name)
            raw[(i, j)] = values[idx]
            line.append(_cell(values[idx], [str(prep.run_ids[k]) for k in idx]))
        cells.append(line)

    # ratio to a reference column (training-time ratio): each run's value / the reference cell's mean
    if base_metric.ratio_to_col:
        ref_j = [c.label for c in col_headers].index(base_metric.ratio_to_col)
        dropped = False
        for i in range(len(row_headers)):
            ref = raw.get((i, ref_j))
            ref_mean = float(np.mean(ref)) if ref is not None and len(ref) else None
            for j in range(len(col_headers)):
                if (i, j) not in raw or not len(raw[(i, j)]):
                    continue
                if ref_mean is None:
                    cells[i][j], dropped = Cell(), True
                else:
                    cells[i][j] = _cell(raw[(i, j)] / ref_mean, cells[i][j].run_ids)
        if dropped:
            notes.append(f"Cells whose row has no {base_metric.ratio_to_col} run have no ratio.")

    # derived difference columns
    col_labels = [c.label for c in col_headers]
    for j, ch in enumerate(col_headers):
        if not ch.derived:
            continue
        a, b = (col_labels.index(x) for x in ch.derived)
        for i in range(len(row_headers)):
            ca, cb = cells[i][a], cells[i][b]
            if ca.mean is not None and cb.mean is not None:
                cells[i][j].mean = ca.mean - cb.mean

    # published values
    has_paper = False
    if spec.paper_key:
        for i, rh in enumerate(row_headers):
            for j, ch in enumerate(col_headers):
                p, ps = lookup_paper(spec.paper_key, paper_table, rh.paper_path, ch.paper or ch.label)
                c = cells[i][j]
                c.paper, c.paper_std = p, ps
                has_paper |= p is not None
                if p is not None and c.mean is not None:
                    c.diff = c.mean - p

    lower = base_metric.lower_is_better
    _mark_best(cells, row_headers, col_headers, spec.best, lower, spec.decimals)

    empty = not any(c.n for row in cells for c in row)
    row_paths = [h.path for h in row_headers]
    depth = max((len(p) for p in row_paths), default=len(spec.row_names))
    row_paths = [(("",) * (depth - len(p))) + p for p in row_paths]
    row_names = list(spec.row_names[-depth:]) if len(spec.row_names) >= depth else \
        [""] * (depth - len(spec.row_names)) + list(spec.row_names)

    if spec.dynamic_rows or spec.dynamic_cols:  # unfinished runs that would have made their own header
        values, _, _ = prep.per_run_values(base_metric, user_params)
        excluded.update(np.flatnonzero(base & ~np.isnan(values) & ~finished).tolist())
    if multi_setting:
        notes.append(f"Some runs have {', '.join(sorted(multi_setting))} under several settings (params); each "
                     "such run contributes the mean over its settings - narrow with --where params.KEY=VALUE.")
    if excluded and not include_unfinished:
        notes.append(f"{len(excluded)} unfinished run(s) (running/failed/interrupted) left out; "
                     "--include-unfinished counts them.")
    if spec.protocol:
        shown = ", ".join(f"{k}={as_matcher(v).describe()}" for k, v in protocol.items())
        if shown:
            notes.append(f"Protocol: {shown} (the paper's; --where KEY=VALUE replaces it).")
        if other_protocol:
            notes.append(f"{len(other_protocol)} run(s) that match but were trained under another protocol "
                         "are left out.")
    if include_unfinished:
        notes.append("Includes unfinished runs (running/failed/interrupted).")
    if user:
        notes.append("Filter: " + ", ".join(f"{k}={m.describe()}" for k, m in user.items()) + ".")
    if paper and not has_paper:
        notes.append("No published values for this table." if not adhoc else
                     "--paper applies to paper tables (--table ID); an ad-hoc pivot has no published values.")
    if spec.note:
        notes.append(spec.note)
    if empty:
        notes.insert(0, _empty_hint(prep, spec, adhoc))

    metric_label = base_metric.label or base_metric.name
    title = spec.title if not adhoc else spec.caption
    report = Report(
        title=title, caption="", row_names=row_names, rows=row_paths, columns=col_labels, cells=cells,
        lower_is_better=lower, best_per=spec.best, metric=metric_label, table_id=spec.id or None,
        paper=spec.paper if spec.paper_key else None, show_paper=paper and has_paper, show_runs=show_runs,
        decimals=spec.decimals, empty=empty, notes=notes,
    )
    report.caption = _caption(report, spec, adhoc)
    return report


def _metric_option_name(ms: MetricSpec) -> str:
    if ms.transform == "error":
        return "error" if ms.name == "top1" else f"{ms.name}_error"
    return ms.name


def _cell(values: np.ndarray, run_ids: list[str]) -> Cell:
    n = len(values)
    if n == 0:
        return Cell()
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if n > 1 else None
    return Cell(mean=mean, std=std, n=n, run_ids=run_ids)


def _mark_best(cells, row_headers, col_headers, best: str | None, lower: bool, decimals: int) -> None:
    if not best:
        return
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for i, rh in enumerate(row_headers):
        for j, ch in enumerate(col_headers):
            c = cells[i][j]
            if c.derived or c.mean is None:
                continue
            key = ("col", j, rh.group) if best == "column" else ("row", i)
            groups.setdefault(key, []).append((i, j))
    for members in groups.values():
        if len(members) < 2:
            continue
        shown = [round(cells[i][j].mean, decimals) for i, j in members]
        target = min(shown) if lower else max(shown)
        for (i, j), v in zip(members, shown):
            cells[i][j].best = v == target


def _caption(report: Report, spec: TableSpec, adhoc: bool) -> str:
    parts = []
    if not adhoc:  # the caption's first sentence is the title
        rest = spec.caption.split(". ", 1)[1] if ". " in spec.caption else ""
        if rest:
            parts.append(rest.rstrip(".") + ".")
    counts = report.seed_counts
    if counts:
        lo, hi = min(counts), max(counts)
        n_text = f"n = {lo} seed{'s' if lo != 1 else ''} per cell" if lo == hi else f"n = {lo}–{hi} seeds per cell"
        parts.append(f"Cells: mean ± sample standard deviation over seeds (ddof = 1); one seed shows the value "
                     f"alone; {n_text}.")
    if report.best_per and counts:
        where = {"column": "per column", "row": "per row"}[report.best_per]
        parts.append(f"Bold: best {where} ({'lower' if report.lower_is_better else 'higher'} is better).")
    if report.show_paper:
        parts.append("In parentheses: the published value and our difference to it (ours − paper).")
    parts.extend(report.notes)
    return " ".join(parts)


def _empty_hint(prep: Prepared, spec: TableSpec, adhoc: bool) -> str:
    if adhoc:
        return ("No finished run matches; train one with `msda train --recipe NAME` "
                "(see `msda recipes list`) and evaluate it, or loosen --where.")
    recipes = _recipes_for(spec)
    arch = _values_of(spec, "arch")
    if recipes:
        cmd = f"msda train --recipe {recipes[0]}" + (f" --arch {','.join(arch)}" if len(arch) > 1 else "")
        shown = ", ".join(recipes[:12]) + (f" (+{len(recipes) - 12} more)" if len(recipes) > 12 else "")
        how = f"recipes for this table: {shown}; e.g. `{cmd} --seeds 0,1,2`"
    else:
        methods = _values_of(spec, "method")
        cmd = "msda train --recipe RECIPE" + (f" --method {','.join(methods)}" if methods else "") \
            + (f" --arch {','.join(arch)}" if arch else "") + " --seeds 0,1,2"
        how = f"produce one with `{cmd}`" + (f" ({spec.recipe_hint})" if spec.recipe_hint else "")
    return f"No finished run matches this table yet; {how}. See `msda recipes list`."


def _values_of(spec: TableSpec, key: str) -> list[str]:
    out: list[str] = []
    for h in (*spec.rows, *spec.cols):
        v = h.where.get(key, spec.where.get(key))
        if isinstance(v, str) and v not in out:
            out.append(v)
    v = spec.where.get(key)
    if isinstance(v, str) and v not in out:
        out.append(v)
    return out


def _recipes_for(spec: TableSpec) -> list[str]:
    """Trainable recipes whose `paper_table` names this table ("hmix-gmix Table 2; DCutMix Table 2")."""
    key = (spec.paper_key, (spec.number or spec.paper_table).split()[0].lower())
    return _recipe_index().get(key, [])


PAPER_ALIASES = {"hmix-gmix": "hmix-gmix", "unified": "hmix-gmix", "hmix": "hmix-gmix", "gmix": "hmix-gmix",
                 "mixupe": "mixupe", "dcutmix": "dcutmix", "k-image": "dcutmix", "dmixup": "dcutmix"}


@lru_cache(maxsize=1)
def _recipe_index() -> dict[tuple[str, str], list[str]]:
    """(paper key, table number) -> recipe names, from every recipe's resolved `paper_table`."""
    try:
        from msda_cli.config import list_recipe_names, read_recipe
    except Exception:  # pragma: no cover - config module unavailable
        return {}
    index: dict[tuple[str, str], list[str]] = {}
    for name in list_recipe_names():
        try:
            text = str(read_recipe(name).get("paper_table") or "")
        except Exception:  # a broken recipe is not the report's business
            continue
        for segment in text.split(";"):
            words = segment.strip().split()
            paper = PAPER_ALIASES.get(words[0].lower()) if words else None
            if paper is None:
                continue
            for number in re.findall(r"(?:Table|Figure|Fig\.)\s*([0-9]+[a-z]?)", segment, flags=re.I):
                index.setdefault((paper, number.lower()), []).append(name)
    return index
