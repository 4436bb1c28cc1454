"""One source of names: the registries declare every method, architecture and data set with its label;
the README's tables, the `mixing` docstring, the report's labels and the `--help` lists agree with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from msda_cli import mixing
from msda_cli.cli import app
from msda_cli.data import DATASETS, dataset_options
from msda_cli.mixing import MIXERS, method_hparams
from msda_cli.models import MODELS, model_options
from msda_cli.registry import Registry
from msda_cli.report.labels import ordered, value_label

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMMON_HPARAMS = ("smoothing", "mask_mode")  # every method / every mask method: stated once above the table


def readme_table(header: str) -> list[list[str]]:
    """The rows (cells stripped) of the README table whose header line starts with `header`."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def readme_value(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return f"`{v}`"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return str(v)


def readme_defaults(defaults: dict, skip=()) -> str:
    shown = [f"`{k}` ({readme_value(v)})" for k, v in defaults.items() if k not in skip]
    return ", ".join(shown) or "–"


def test_readme_methods_table_is_the_registry():
    rows = readme_table("| method | label |")
    assert [r[0] for r in rows] == [f"`{n}`" for n in MIXERS]  # every method once, in the report's order
    for name, row in zip(MIXERS, rows):
        assert row[1] == MIXERS.label(name)
        assert row[2] == readme_defaults(method_hparams(name), COMMON_HPARAMS), name


def test_readme_architecture_table_is_the_registry():
    rows = readme_table("| architecture | label |")
    assert [r[0] for r in rows] == [f"`{n}`" for n in MODELS]
    for name, row in zip(MODELS, rows):
        assert row[1] == MODELS.label(name)
        assert row[2] == readme_defaults(model_options(name)), name


def test_readme_data_set_table_is_the_registry():
    rows = readme_table("| data set | label |")
    assert [r[0] for r in rows] == [f"`{n}`" for n in DATASETS]
    for name, row in zip(DATASETS, rows):
        assert row[1] == DATASETS.label(name)
        assert row[2] == readme_defaults(dataset_options(name), ("download",)), name  # --download is a flag


def test_mixing_docstring_lists_every_method_with_its_defaults():
    listed, last = {}, None
    for line in mixing.__doc__.splitlines():
        m = re.match(r"^  (\S+)(.*)$", line)
        more = re.match(r"^ {3,}(\S.*)$", line) if last else None  # a long method line wraps, indented
        if m:
            last = m.group(1)
            listed[last] = dict(re.findall(r"\b(\w+)=([^\s,]+)", m.group(2)))
        elif more:
            listed[last].update(re.findall(r"\b(\w+)=([^\s,]+)", more.group(1)))
        else:
            last = None
    assert list(listed) == list(MIXERS)
    for name, shown in listed.items():
        expected = {k: str(v) for k, v in method_hparams(name).items() if k not in COMMON_HPARAMS}
        assert shown == expected, name


def test_report_labels_and_order_come_from_the_registries():
    for key, registry in (("method", MIXERS), ("arch", MODELS), ("dataset", DATASETS)):
        assert registry.labels, key
        for name in registry:
            assert value_label(key, name) == registry.label(name)
        unlabelled = sorted(set(registry) - set(registry.labels))  # after the labelled ones, by name
        assert ordered(key, list(reversed(registry))) == [*registry.labels, *unlabelled]
    assert value_label("method", "mixup-cutmix") == "Stochastic Mixup & CutMix"  # the label strings reports print
    assert value_label("arch", "resnet56") == "RN56" and value_label("dataset", "cifar100") == "CIFAR-100"
    assert value_label("arch", "digits-cnn") == "digits-cnn"  # registered without a label: its name


def test_a_registry_keeps_labels_in_registration_order():
    reg = Registry("widget")
    reg.register("b", label="Bee")(object)
    reg.register("a")(object)
    reg.register("c", label="Sea")(object)
    assert reg.labels == {"b": "Bee", "c": "Sea"} and list(reg.labels) == ["b", "c"]
    assert reg.label("a") == "a" and reg.label("c") == "Sea"
    with pytest.raises(KeyError, match="registered twice"):
        reg.register("a", label="Ay")(object)


def _option(path: tuple[str, ...], flag: str):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    (option,) = [p for p in command.params if flag in p.opts]
    return command, option


def _spoken(choices) -> str:
    """`a, b or c`: how a --help text lists its choices."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


# every option that takes one of a fixed set of values, and the set the code checks it against
_CHOICE_OPTIONS = [(("robust",), "--attack", "ATTACKS"), (("robust",), "--ood-protocol", "OOD_PROTOCOLS"),
                   (("subsample",), "--measure", "MEASURES"), (("subsample",), "--order", "ORDERS"),
                   (("subsample",), "--select", "SELECTS"), (("runs", "list"), "--status", "RUN_STATUSES"),
                   (("analyze", "gradprod"), "--output", "OUTPUTS"),
                   (("analyze", "gradprod"), "--channels", "CHANNELS"),
                   (("analyze", "gradprod"), "--reduce", "REDUCES"), (("analyze", "coeffs"), "--pixels", "PIXELS"),
                   (("report",), "--epoch", "EPOCHS"), (("report",), "--select-by", "SELECT_METRICS"),
                   (("train",), "--launcher", "LAUNCHERS"), (("reproduce",), "--launcher", "LAUNCHERS"),
                   (("export",), "--to", "TARGETS"), (("plot", "curves"), "--metric", "CURVE_METRICS")]
_FORMAT_COMMANDS = [("report",), ("train",), ("reproduce",), ("eval",), ("robust",), ("subsample",), ("runs", "list"),
                    ("analyze", "coeffs"), ("analyze", "gradprod"), ("analyze", "landscape")]


@pytest.mark.parametrize("path,flag,name", _CHOICE_OPTIONS + [(c, "--format", "FORMATS") for c in _FORMAT_COMMANDS])
def test_help_lists_and_completes_the_choices_the_code_accepts(path, flag, name):
    from msda_cli import choices

    accepted = list(getattr(choices, name))
    command, option = _option(path, flag)
    assert re.search(rf": {re.escape(_spoken(accepted))}(?=[ .(]|$)", option.help), (path, flag, option.help)
    assert [item.value for item in option.shell_complete(typer.Context(command), "")] == accepted


def test_the_checking_modules_take_their_sets_from_choices():
    from msda_cli import choices, curves, export, render
    from msda_cli.analysis import gradprod
    from msda_cli.cli import slurm_options
    from msda_cli.report import choice, epochs
    from msda_cli.robust import attacks, imagenet_o
    from msda_cli.store import tables
    from msda_cli import subsample

    assert render.FORMATS is choices.FORMATS and attacks.ATTACKS is choices.ATTACKS
    assert imagenet_o.OOD_PROTOCOLS is choices.OOD_PROTOCOLS and tables.RUN_STATUSES is choices.RUN_STATUSES
    assert epochs.EPOCHS is choices.EPOCHS and choice.SELECT_METRICS is choices.SELECT_METRICS
    assert (subsample.MEASURES, subsample.ORDERS, subsample.SELECTS) == (choices.MEASURES, choices.ORDERS,
                                                                          choices.SELECTS)
    assert (gradprod.OUTPUTS, gradprod.CHANNELS, gradprod.REDUCES) == (choices.OUTPUTS, choices.CHANNELS,
                                                                        choices.REDUCES)
    assert export.TARGETS is choices.TARGETS and curves.CURVE_METRICS is choices.CURVE_METRICS
    assert slurm_options.LAUNCHERS is choices.LAUNCHERS


def test_a_list_option_completes_after_a_comma():
    command, option = _option(("subsample",), "--measure")
    assert [item.value for item in option.shell_complete(typer.Context(command), "cv,m")] == ["cv,mean"]


def test_choices_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, msda_cli.choices, msda_cli.completion; "
            "print(sorted({'torch', 'pandas', 'numpy', 'sqlmodel'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"  # msda --help and every TAB read them at start-up


def test_readme_development_map_names_every_module_and_folder():
    from test_import_layers import MODULES, component

    section = README.split("## Development", 1)[1]
    tree = section.split("```")[1]
    components = {component(m) for m in MODULES} - {"msda_cli", "__main__"}
    packages = {component(m) for m, path in MODULES.items() if path.name == "__init__.py"} - {"msda_cli"}
    missing = sorted(c for c in components if (f"{c}/" if c in packages else f"{c}.py") not in tree)
    assert not missing, f"add {missing} to the README's Development map"
