"""The store's final-metrics frame, prepared once for filtering: runs and metrics.

The frame (one row per final metric, joined with its run) is turned once into a run table
(run columns + the flattened resolved config + subset columns) and a metric table; both are
cached per frame object, so building every paper table from one frame parses JSON once.
Filters become boolean masks over runs and a metric becomes one value per run, so a cell
costs a few numpy operations whatever the store's size; a run's setting (msda_cli.report.settings)
is computed only for the runs of a cell's data set, architecture and method.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

import numpy as np
import pandas as pd

from msda_cli.errors import MsdaError
from msda_cli.report.labels import subset_label
from msda_cli.report.match import Match, as_matcher, tags_match
from msda_cli.report.settings import flatten, setting, setting_text
from msda_cli.report.spec import MetricSpec
from msda_cli.store.tags import TAG_KEY

RUN_COLUMNS = ("run_id", "name", "recipe", "dataset", "arch", "method", "seed", "status", "subset_id", "tags", "note")
FINISHED = "finished"
# metric parameters that record how much was evaluated, not what: a re-run with another count
# replaces the earlier value instead of counting as another setting (`msda eval`'s data set and checkpoint epoch
# too: its names carry another data set, and its `checkpoint` marks another checkpoint than the run's final one)
BOOKKEEPING_PARAMS = frozenset({"n_examples", "n_in", "n_out", "dataset_dir", "dataset", "epoch"})


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
        # one integer code per (kind, name): a metric's rows are then one integer comparison away
        kind_codes, kinds = pd.factorize(self.metrics["kind"], use_na_sentinel=False)
        name_codes, metric_names = pd.factorize(self.metrics["name"], use_na_sentinel=False)
        self._pair_codes = kind_codes.astype(np.int64) * max(len(metric_names), 1) + name_codes
        self._pair_index = {(kinds[c // len(metric_names)], metric_names[c % len(metric_names)]): c
                            for c in pd.unique(self._pair_codes)}
        self.metric_pairs: list[tuple[str, str]] = list(self._pair_index)  # in order of appearance
        self._groups: dict[tuple[str, str], pd.DataFrame] = {}
        self._params: dict[tuple, pd.DataFrame] = {}
        self._mask_cache: dict[tuple, np.ndarray] = {}
        self._values_cache: dict[tuple, tuple] = {}
        self._param_keys: frozenset | None = None
        self._settings: dict[str, str] = {}
        self._flat: dict[int, dict] = {}  # id(config) -> its setting
        self._setting_texts: dict[frozenset, dict[int, str]] = {}  # drop -> id(config) -> setting text

    # -- keys --------------------------------------------------------------------------
    def config_keys(self) -> list[str]:
        """Every dotted key of any run's config (computed only for error messages)."""
        if self._config_keys is None:
            keys: dict[str, None] = {}
            for d in {id(d): d for d in self._configs}.values():
                keys.update(dict.fromkeys(flatten(d)))
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
        if key == TAG_KEY:
            return "tags" in self.columns
        if key.startswith("params."):
            return key.removeprefix("params.") in self.all_param_keys()
        return self.column(key) is not None

    def all_param_keys(self) -> frozenset:
        if self._param_keys is not None:
            return self._param_keys
        keys: set[str] = set()
        for text in pd.unique(self.metrics["params"]):
            try:
                keys.update(flatten(json.loads(text)).keys())
            except (TypeError, ValueError):
                pass
        self._param_keys = frozenset(keys)
        return self._param_keys

    def metric_names(self) -> list[str]:
        return sorted({name for _, name in self.metric_pairs})

    def group(self, kind: str, name: str) -> pd.DataFrame | None:
        """The metric rows of one (kind, name), or None."""
        if (kind, name) not in self._groups:
            code = self._pair_index.get((kind, name))
            self._groups[(kind, name)] = None if code is None else self.metrics[self._pair_codes == code]
        return self._groups[(kind, name)]

    # -- settings ---------------------------------------------------------------------
    def setting_at(self, pos: int) -> dict:
        """The setting of the run at position `pos` (msda_cli.report.settings)."""
        config = self._configs[pos]
        flat = self._flat.get(id(config))
        if flat is None:
            flat = self._flat[id(config)] = setting(config)
        return flat

    def setting_texts(self, positions: np.ndarray, drop: frozenset = frozenset()) -> list[str]:
        """The setting text of each run at `positions`, leaving out the keys in `drop`. Computed on
        demand (a cell asks only for the runs of its data set, architecture and method) and cached."""
        cache = self._setting_texts.setdefault(drop, {})
        out = []
        for pos in positions.tolist():
            key = id(self._configs[pos])
            text = cache.get(key)
            if text is None:
                text = cache[key] = setting_text(self.setting_at(pos), drop)
            out.append(text)
        return out

    def setting_mask(self, text: str, within: np.ndarray, drop: frozenset = frozenset()) -> np.ndarray:
        """Runs among `within` (a mask) whose setting, without the keys in `drop`, has this text."""
        pos = np.flatnonzero(within)
        mask = np.zeros(self.n_runs, dtype=bool)
        mask[pos] = np.array([t == text for t in self.setting_texts(pos, drop)], dtype=bool)
        return mask

    def distinct_settings(self, positions: np.ndarray, drop: frozenset = frozenset()) -> list[dict]:
        """One setting (a run's) per distinct setting text among the runs at `positions`."""
        first: dict[str, int] = {}
        for pos, text in zip(positions.tolist(), self.setting_texts(positions, drop)):
            first.setdefault(text, pos)
        return [self.setting_at(pos) for pos in first.values()]

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
            if m is None and key == TAG_KEY:  # any one of the run's tags
                m = np.fromiter((tags_match(matcher, text) for text in self.columns["tags"]), bool, self.n_runs)
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


_PREPARED: dict[tuple, tuple] = {}  # (id(frame), id(subsets)) -> (weak ref to frame, Prepared, len(frame))


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


def clear_prepared() -> None:
    """Forget every prepared frame (a benchmark's cold start)."""
    _PREPARED.clear()


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
    flat: dict[int, dict] = {}  # _parse_all shares one dict per distinct text: flatten each once
    records = []
    for d in _parse_all(texts):
        if id(d) not in flat:
            flat[id(d)] = flatten(d)
        records.append(flat[id(d)])
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
            extra = flatten(json.loads(params)) if isinstance(params, str) and params else {}
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
