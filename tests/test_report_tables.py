"""Every paper table: each cell receives exactly the runs made for it, and renders in every format.

For each table the store gets two finished seeds per cell, made from the cell's plan (its
resolved config, and the cell's metric with its parameters), with a value unique to the cell.
A filter that routes a run to the wrong cell, or a cell that no run can satisfy, shows up as a
wrong or missing mean; a cell the tool cannot train stays empty.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert

from msda_cli.config import set_dotted
from msda_cli.report import TABLES, build_report, list_tables, render, render_rich
from msda_cli.report.build import table_plans
from msda_cli.report.match import example_value
from msda_cli.report.paper import PAPER_DIR, paper_values
from msda_cli.report.plan import resolve
from msda_cli.report.spec import TOP1_ERR, Header, Plan, TableSpec
from msda_cli.store import Store
from msda_cli.store.tables import Metric, Run, Subset


class Filler:
    def __init__(self):
        self.runs, self.metrics, self.subsets = [], [], []
        self.now = datetime.now(timezone.utc)

    def run(self, config: dict, metric, raw: float, seed: int, table: str, subset_id: str | None = None,
            changes: dict | None = None, status: str = "finished") -> str:
        """A run of `config` (a plan's resolved config) with `changes` (dotted key -> value) and one metric."""
        rid = f"{len(self.runs):08x}"
        cfg = json.loads(json.dumps(config))
        for key, value in (changes or {}).items():
            set_dotted(cfg, key, value)
        cfg["seed"] = seed
        self.runs.append(dict(id=rid, name=f"{table}-{len(self.runs)}", recipe=cfg["name"], config=json.dumps(cfg),
                              status=status, epochs_done=1, created_at=self.now, host="h", msda_version="0",
                              dataset=cfg["dataset"], arch=cfg["arch"], method=cfg["method"], seed=seed,
                              subset_id=subset_id))
        params = {k: example_value(v) for k, v in metric.params.items()}
        self.metrics.append(dict(run_id=rid, kind=metric.kind or "eval", name=metric.name, value=raw, epoch=None,
                                 params=json.dumps(params, sort_keys=True), created_at=self.now))
        return rid

    def write(self, store: Store) -> None:
        with store.engine.begin() as con:
            con.execute(insert(Run.__table__), self.runs)
            if self.subsets:
                con.execute(insert(Subset.__table__), self.subsets)
            con.execute(insert(Metric.__table__), self.metrics)


def fill_table(f: Filler, spec) -> tuple[list[str], dict]:
    """Two seeds per trainable cell; returns the run ids and the expected mean per (row path, column)
    (None for a cell the tool cannot train)."""
    ids, expected = [], {}
    if spec.dynamic_rows:  # Figure 5a: runs trained on subsets (measure x ratio)
        config = resolve(spec.plan).config
        k = 0
        for measure in ("cv", "random"):
            for ratio in (0.05, 0.1):
                sid = f"sub-{measure}-{ratio}"
                f.subsets.append(dict(id=sid, source_run_id=None, measure=measure, ratio=ratio, seed=0, size=10,
                                      indices_path="x", params="{}", created_at=f.now))
                raw = 50.0 + k
                for seed in (0, 1):
                    ids.append(f.run(config, spec.metric, raw + seed, seed, spec.id, subset_id=sid))
                expected[((measure.upper() if measure == "cv" else "Random",), f"t = {ratio:g}")] = \
                    100.0 - (raw + 0.5)
                k += 1
        return ids, expected
    raw = 10.0
    for cell, res in table_plans(spec):
        if res is None:
            expected[(cell.row.path, cell.col.label)] = None
            continue
        for seed in (0, 1):
            ids.append(f.run(res.config, cell.metric, raw + seed, seed, spec.id))
        mean = raw + 0.5
        expected[(cell.row.path, cell.col.label)] = 100.0 - mean if cell.metric.transform == "error" else mean
        raw += 2.0
    return ids, expected


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("tables") / "msda.db")
    f = Filler()
    per_table = {spec.id: fill_table(f, spec) for spec in list_tables()}
    # subsets need a source run
    if f.subsets:
        for s in f.subsets:
            s["source_run_id"] = f.runs[0]["id"]
    f.write(store)
    return store, store.final_metrics_frame(), store.list_subsets(), per_table


@pytest.mark.parametrize("table_id", list(TABLES))
def test_every_cell_gets_its_runs(populated, table_id):
    _, frame, subsets, per_table = populated
    ids, expected = per_table[table_id]
    own = frame[frame["run_id"].isin(ids)]
    rep = build_report(own, table=table_id, subsets=subsets, paper=True)
    assert not rep.empty
    got = {}
    for path, row in zip(rep.rows, rep.cells):
        for col, cell in zip(rep.columns, row):
            if not cell.derived:
                got[(tuple(p for p in path if p), col)] = (cell.mean, cell.n)
    assert set(got) == set(expected)
    for key, mean in expected.items():
        if mean is None:  # not trainable here: nothing counts in it
            assert got[key] == (None, 0), key
            continue
        assert got[key][1] == 2, key
        assert got[key][0] == pytest.approx(mean), key
    for row in rep.cells:  # difference columns = column a - column b
        for cell in row:
            if cell.derived:
                assert cell.mean is not None


@pytest.mark.parametrize("table_id", list(TABLES))
def test_every_table_renders_in_every_format(populated, table_id):
    _, frame, subsets, _ = populated
    rep = build_report(frame, table=table_id, subsets=subsets, paper=True, show_runs=True)
    n_rows, n_cols = len(rep.rows), len(rep.columns)
    md = render(rep, "markdown").splitlines()
    assert md[0] == f"**{rep.title}**"
    table = [line for line in md if line.startswith("|")]  # header, alignment, rows
    assert len(table) == n_rows + 2 and set(table[1]) <= set("|:-")
    assert all(line.count(" | ") >= n_cols for line in table[:1] + table[2:])
    tex = render(rep, "latex").splitlines()
    rules = [r"\toprule", r"\midrule", r"\bottomrule"]
    assert [x for x in tex if x in rules] == rules
    assert sum(1 for line in tex if line.endswith(r"\\")) == n_rows + 1
    rows = list(csv.DictReader(io.StringIO(render(rep, "csv"))))
    assert len(rows) == n_rows * n_cols
    doc = json.loads(render(rep, "json"))
    assert len(doc["cells"]) == n_rows * n_cols and doc["table"] == table_id
    assert render_rich(rep).renderables[1].row_count == n_rows
    assert rep.title in render(rep, "rich")


def test_every_table_on_an_empty_store(tmp_path):
    store = Store(tmp_path / "empty.db")
    frame = store.final_metrics_frame()
    for spec in list_tables():
        rep = build_report(frame, table=spec.id, subsets=store.list_subsets())
        assert rep.empty and "No finished run matches this table yet" in rep.caption, spec.id
        assert f"msda reproduce --table {spec.id}" in rep.caption
        for fmt in ("markdown", "latex", "csv", "json", "rich"):
            assert render(rep, fmt)


def test_manifold_mixup_cells_leave_out_runs_stored_before_layers_existed(tmp_path):
    """Before `layers`, Manifold Mixup mixed after the stem and every stage: another setting."""
    spec = TABLES["dcutmix-1"]
    row = next(h for h in spec.rows if h.label == "Manifold Mixup")
    col = spec.cols[1]
    cs = spec.cell(row, col)
    config = resolve(cs.plan).config
    f = Filler()
    for seed in (0, 1):
        f.run(config, spec.metric, 10.0 + seed, seed, "mm")
    old = f.run(config, spec.metric, 90.0, 2, "mm")
    cfg = json.loads(f.runs[-1]["config"])
    del cfg["mixer"]["layers"]
    f.runs[-1]["config"] = json.dumps(cfg)
    store = Store(tmp_path / "msda.db")
    f.write(store)
    rep = build_report(store.final_metrics_frame(), table="dcutmix-1", subsets=[], paper=False)
    cell = rep.cells[rep.rows.index(row.path)][rep.columns.index(col.label)]
    assert cell.n == 2 and cell.mean == pytest.approx(100.0 - 10.5)
    assert cell.left_out == [old] and "(keys that differ: mixer.layers)" in rep.caption


# columns whose paper prints no value (HMix/GMix Table 1: "as in the paper's Appendix G")
UNPUBLISHED_COLUMNS = {"1": {"HMix", "GMix"}}
PUBLISHED = [t for t in TABLES if TABLES[t].rows and (PAPER_DIR / f"{TABLES[t].paper_key}.yaml").is_file()]


def test_only_the_digits_table_has_no_published_values():
    assert {t for t in TABLES if TABLES[t].rows} - set(PUBLISHED) == {"digits"}


@pytest.mark.parametrize("table_id", PUBLISHED)
def test_published_values_name_every_row_and_column(table_id):
    """A header renamed in its table module but not in paper_values/*.yaml (or the reverse) loses its values."""
    spec = TABLES[table_id]
    values = paper_values(spec.paper_key)["tables"][spec.paper_table]["values"]
    published_cols = set()
    for row in spec.rows:
        node = values
        for part in row.paper_path:
            assert isinstance(node, dict) and part in node, (table_id, row.paper_path)
            node = node[part]
        published_cols |= set(node)
    cols = {c.paper or c.label for c in spec.cols}
    assert cols - published_cols == UNPUBLISHED_COLUMNS.get(table_id, set())


def test_a_cell_plan_joins_table_row_column_and_cell_parts():
    row = Header("DCutMix", plan=Plan(method="dcutmix", sets=("mixer.k=5",)))
    col = Header("Short", plan=Plan(arch="resnet56", sets=("epochs=30", "mixer.k=7")))
    spec = TableSpec(id="t", source=TABLES["2"].source, paper_table="t", caption="c", plan=Plan(recipe="c-{method}"),
                     rows=(row,), cols=(col, Header("Δ", derived=("Short", "Short"))), metric=TOP1_ERR,
                     cell_plans={("DCutMix", "Short"): Plan(sets=("optim.lr=0.1",))})
    cell = spec.cell(row, col)
    assert cell.plan == Plan(recipe="c-{method}", method="dcutmix", arch="resnet56",
                             sets=("mixer.k=5", "epochs=30", "mixer.k=7", "optim.lr=0.1"))  # later parts win
    assert cell.plan.recipe_name == "c-dcutmix" and cell.metric is TOP1_ERR and cell.label == "DCutMix / Short"
    assert [c.col.label for c in spec.cells()] == ["Short"]  # a difference column holds no runs
    assert (Plan(untrainable="no") | Plan(recipe="r")).untrainable == "no"
    assert TableSpec(id="p", source=None, paper_table="", caption="c", rows=(row,), cols=(col,),
                     metric=TOP1_ERR).cell(row, col).plan is None  # an ad-hoc pivot has no plans
