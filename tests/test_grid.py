"""`--grid key=a,b,c`: the product of the listed values, one run each, told apart by name and label."""

from __future__ import annotations

import json

import pytest

from conftest import query
from msda_cli.engine.launch import TrainRequest, resolve_configs
from msda_cli.errors import MsdaError
from msda_cli.grid import grid_points, parse_grid, split_values


def test_values_split_at_top_level_commas_only():
    assert split_values("0.1, 0.2,1") == ["0.1", "0.2", "1"]
    assert split_values("[0.9,0.99],[0.8,0.9]") == ["[0.9,0.99]", "[0.8,0.9]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert grid_points(["a=1,2", "b=x,y,z"]) == [[f"a={a}", f"b={b}"] for a in "12" for b in "xyz"]
    assert grid_points([]) == [[]]


@pytest.mark.parametrize("items", [["mixer.alpha"], ["=1,2"], ["mixer.alpha=1,,2"], ["a=1", "a=2"]])
def test_bad_grid_syntax(items):
    with pytest.raises(MsdaError):
        parse_grid(items)


def test_grid_expands_into_the_product_with_methods_and_seeds():
    req = TrainRequest(recipe="iris-mixupe", seeds=[0, 1], grid=["mixer.alpha=0.1,1.0,2", "mixer.eta=0.001,0.01"],
                       sets=["optim.betas=[0.9,0.99]"])
    configs = resolve_configs(req)
    assert len(configs) == 3 * 2 * 2
    points = [(c.mixer["alpha"], c.mixer["eta"], c.seed) for c in configs]
    assert len(set(points)) == 12
    assert {(a, e) for a, e, _ in points} == {(a, e) for a in (0.1, 1.0, 2.0) for e in (0.001, 0.01)}
    assert all(c.optim.betas == (0.9, 0.99) for c in configs)  # --set keeps its one (comma-holding) value
    # a list value in a grid
    betas = resolve_configs(TrainRequest(recipe="iris-mixupe", grid=["optim.betas=[0.9,0.99],[0.5,0.9]"]))
    assert [c.optim.betas for c in betas] == [(0.9, 0.99), (0.5, 0.9)]


def test_a_key_in_both_set_and_grid_is_refused():
    with pytest.raises(MsdaError, match="both"):
        resolve_configs(TrainRequest(recipe="iris-mixupe", sets=["mixer.alpha=1"], grid=["mixer.alpha=0.1,1"]))


def test_a_child_resolves_its_one_grid_point_and_is_labelled_by_it():
    from msda_cli.engine.parallel import new_run_specs
    from msda_cli.engine.train_view import labels_of

    req = TrainRequest(recipe="iris-mixupe", grid=["mixer.alpha=0.1,2", "mixer.eta=0.001,0.01"])
    configs = resolve_configs(req)
    specs = new_run_specs(req, configs)
    assert len({s.label for s in specs}) == 4 and "alpha=0.1" in specs[0].label and "eta=0.001" in specs[0].label
    assert [s.label for s in specs] == labels_of(configs, req.grid)
    for spec, cfg in zip(specs, configs):
        args = list(spec.args)
        grid = [args[i + 1] for i, a in enumerate(args) if a == "--grid"]
        child = TrainRequest(recipe="iris-mixupe", grid=grid)
        assert [c.model_dump_json() for c in resolve_configs(child)] == [cfg.model_dump_json()]


def test_train_with_a_grid_stores_one_run_per_point_named_apart(msda, db_path):
    r = msda("train", "--recipe", "iris-mixup", "--epochs", "1", "--grid", "mixer.alpha=0.2,2", "--seeds", "0,1")
    assert r.code == 0, r.stderr
    rows = query(db_path, "SELECT name, config FROM run")
    assert len(rows) == 4 and len({name for name, _ in rows}) == 4
    assert sorted(json.loads(c)["mixer"]["alpha"] for _, c in rows) == [0.2, 0.2, 2.0, 2.0]
    listed = msda("runs", "list", "--format", "json")
    assert listed.code == 0 and "alpha=0.2" in listed.stdout and "alpha=2" in listed.stdout


@pytest.mark.parametrize("grid", ["mixer.alpha=", "nokey.sub=1,2", "mixer.alpha=1,-1"])
def test_bad_grid_is_one_line_exit_2_nothing_written(msda, db_path, grid):
    r = msda("train", "--recipe", "iris-mixup", "--epochs", "1", "--grid", grid)
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not db_path.exists() or query(db_path, "SELECT count(*) FROM run") == [(0,)]
