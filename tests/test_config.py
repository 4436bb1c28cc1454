"""Recipes: loading, `extends`, overrides, expansion and validation errors."""

import pytest
import yaml

from msda_cli.config import (
    apply_set, check_names, expand, list_recipe_names, parse_assignment, parse_assignments, read_recipe,
    resolve_method_list, validate,
)
from msda_cli.errors import MsdaError


def test_digits_recipes_resolve_through_extends():
    raw = read_recipe("digits-mixup")
    assert raw["name"] == "digits-mixup"
    assert raw["dataset"] == "digits" and raw["arch"] == "digits-cnn"
    cfg = validate(raw)
    assert cfg.method == "mixup" and cfg.mixer == {"alpha": 1.0}
    assert cfg.optim.lr == 0.05 and cfg.epochs == 15


def test_every_recipe_validates_and_names_exist():
    names = list_recipe_names()
    assert {"digits-vanilla", "digits-mixup", "digits-cutmix"} <= set(names)
    assert not any(n.startswith("_") for n in names)
    for name in names:
        check_names(validate(read_recipe(name), source=name))


def test_set_overrides_nested_and_parses_scalars():
    raw = apply_set(read_recipe("digits-mixup"), ["optim.lr=0.2", "mixer.alpha=0.4", "epochs=3", "grad_clip=1.5"])
    cfg = validate(raw)
    assert cfg.optim.lr == 0.2 and cfg.mixer["alpha"] == 0.4 and cfg.epochs == 3 and cfg.grad_clip == 1.5


def test_set_unknown_key_names_the_valid_ones():
    with pytest.raises(MsdaError, match=r"unknown key 'optim.lrr'.*optim.lr"):
        apply_set(read_recipe("digits-mixup"), ["optim.lrr=0.1"])
    with pytest.raises(MsdaError, match="unknown key 'epoch'"):
        apply_set(read_recipe("digits-mixup"), ["epoch=3"])
    with pytest.raises(MsdaError, match="key=value"):
        apply_set(read_recipe("digits-mixup"), ["epochs"])


@pytest.mark.parametrize("key,value,match", [
    ("optim.lr", -0.1, "optim.lr"),
    ("epochs", -1, "epochs"),
    ("epochs", "many", "epochs"),
    ("batch_size", 0, "batch_size"),
    ("precision", "fp8", "precision"),
])
def test_bad_values_are_one_clear_error(key, value, match):
    raw = apply_set(read_recipe("digits-mixup"), [f"{key}={value}"])
    with pytest.raises(MsdaError, match=match) as info:
        validate(raw)
    assert "\n" not in str(info.value)


def test_unknown_recipe_key_in_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"dataset": "digits", "arch": "digits-cnn", "epochs": 1, "optimizer": {}}))
    with pytest.raises(MsdaError, match="optimizer: unknown key"):
        validate(read_recipe(str(path)))


def test_unknown_recipe_lists_choices():
    with pytest.raises(MsdaError, match="unknown recipe 'nope'.*digits-mixup"):
        read_recipe("nope")


def test_unknown_names_are_caught_before_training():
    raw = read_recipe("digits-mixup")
    for key, value, match in [("arch", "resnet9000", "unknown architecture"),
                              ("dataset", "imagenet-z", "unknown dataset"),
                              ("method", "supermix", "unknown method")]:
        bad = dict(raw, **{key: value})
        with pytest.raises(MsdaError, match=match):
            check_names(validate(bad))


def test_expand_is_the_cartesian_product_and_switches_method_hparams():
    raw = read_recipe("digits-mixup")
    raw["mixer"] = {"alpha": 0.3, "smoothing": 0.1}
    runs = expand(raw, ["vanilla", "mixup", "cutmix"], [], [0, 1])
    assert [(r["method"], r["seed"]) for r in runs] == [
        ("vanilla", 0), ("vanilla", 1), ("mixup", 0), ("mixup", 1), ("cutmix", 0), ("cutmix", 1)]
    by_method = {r["method"]: r["mixer"] for r in runs}
    assert by_method["mixup"] == {"alpha": 0.3, "smoothing": 0.1}  # the recipe's own method keeps its values
    assert by_method["vanilla"] == {"smoothing": 0.1}  # smoothing carries over, alpha does not
    assert by_method["cutmix"] == {"alpha": 1.0, "smoothing": 0.1}  # from method_defaults


def test_method_list_all_expands_to_every_registered_method():
    from msda_cli.mixing import MIXERS

    methods = resolve_method_list(["all"])
    assert methods[0] == "vanilla" and sorted(methods) == sorted(MIXERS)
    assert resolve_method_list(["mixup", "all"])[0] == "mixup"


def test_switching_arch_drops_the_recipe_arch_options():
    raw = read_recipe("digits-mixup")
    assert raw["model"] == {"width": 16}
    same, other = expand(raw, [], ["digits-cnn", "resnet56"], [])
    assert same["model"] == {"width": 16} and other["model"] == {} and other["arch"] == "resnet56"


def test_one_set_parser_reads_yaml_scalars_and_keeps_unparsable_text():
    assert parse_assignments(["r=0.75", "mask_mode=sample", "k=3", "flag=true", "empty=", " alpha =2/9"]) == {
        "r": 0.75, "mask_mode": "sample", "k": 3, "flag": True, "empty": "", "alpha": "2/9"}
    assert parse_assignments(["r=[", "r=0.5"]) == {"r": 0.5}  # a later key wins
    assert parse_assignments(None) == {} and parse_assignment("a.b=x=y") == ("a.b", "x=y")
    with pytest.raises(MsdaError, match="key=value"):
        parse_assignments(["r"])


@pytest.mark.parametrize("args", [["preview", "--method", "hmix", "--out", "p.png"],
                                  ["analyze", "coeffs", "--method", "hmix", "--draws", "10"]])
def test_method_set_values_yaml_cannot_parse_are_one_line(msda, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = msda(*args, "--set", "r=[")  # once a YAML traceback: now the method's own check of the text
    assert r.code == 2 and r.stderr.strip().splitlines() == ["msda: error: r must be a number, got '['"]
    assert not (tmp_path / "p.png").exists()


def test_seed_is_checked_against_the_range_every_seeded_rng_takes():
    raw = read_recipe("digits-mixup")
    assert validate(dict(raw, seed=2**32 - 1)).seed == 2**32 - 1
    with pytest.raises(MsdaError, match="seed"):
        validate(dict(raw, seed=2**32))


def test_extends_is_looked_up_beside_the_recipe_file_first(tmp_path):
    (tmp_path / "_mybase.yaml").write_text("extends: _digits\nepochs: 2\noptim: {lr: 0.01}\n")
    (tmp_path / "mine.yaml").write_text("extends: _mybase\nmethod: cutmix\n")
    raw = read_recipe(str(tmp_path / "mine.yaml"))  # _mybase beside it, _digits among the packaged recipes
    assert raw["name"] == "mine" and raw["method"] == "cutmix" and raw["epochs"] == 2
    assert raw["optim"]["lr"] == 0.01 and raw["dataset"] == "digits"
    # a file beside the recipe wins over a packaged recipe of the same name
    (tmp_path / "_digits.yaml").write_text("dataset: digits\narch: digits-mlp\nepochs: 1\n")
    assert read_recipe(str(tmp_path / "mine.yaml"))["arch"] == "digits-mlp"
    from msda_cli.config import recipe_chain

    assert [p.name for p in recipe_chain(str(tmp_path / "mine.yaml"))] == ["_digits.yaml", "_mybase.yaml", "mine.yaml"]
    assert recipe_chain(str(tmp_path / "mine.yaml"))[0].parent == tmp_path
