"""The package imports one way: no import cycle, and no module importing from a layer above its own.

Imports are read with `ast` from every module of msda_cli, function-level imports included (a
lazy import is still a dependency). A component is a top-level module or package of msda_cli;
`LAYERS` orders them from the bottom: a module imports from its own component or from a layer
below, never from a layer above nor from another component of its own layer (so the components
of one layer are independent of each other, and the order below is the whole truth).

A package's `__init__` importing its own modules is not a dependency but its contents (the
registries are filled so, and packages re-export their parts); any other circle is a cycle.
Imports that only go down leave no room for a circle between components; the cycle check finds
circles between the modules of one component.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "msda_cli"

LAYERS = [
    {"msda_cli", "errors", "metric_names", "faults", "hostmem", "durable"},  # version, errors, names, process, fsync
    {"checks", "choices", "provenance"},  # the validation idiom; options' fixed value sets; where a run came from
    {"registry", "render", "plots"},  # name registries; plain tables in every output format; the figure style
    {"data", "models", "store"},  # data sets, architectures, the results store
    {"mixing", "subsets"},  # the methods (some read data helpers); subset files and rows
    {"config", "grid"},  # recipes, validated against the registries; --grid points
    {"evaluation"},  # one prediction loop and the metrics
    {"engine"},  # builders from a config, the training loop, checkpoints, launchers
    {"runs"},  # a stored run opened for measuring
    {"robust", "analysis", "subsample", "eval_command"},  # the measuring commands
    {"report"},  # paper tables from the store
    {"reproduce", "curves", "completion"},  # a table's plan made real; training curves; shell completion
    {"export"},  # stored runs to TensorBoard and MLflow (named as curves names them)
    {"cli"},  # the command line
    {"__main__"},  # `python -m msda_cli`
]
LAYER = {component: i for i, group in enumerate(LAYERS) for component in group}


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    """{dotted module name: file} of every module of the package at `root`."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("msda_cli", *path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """{module: the msda_cli modules it imports}, anywhere in its file."""
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the importing module's package
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:  # `from pkg import module` imports the module itself
                    found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
        found = {m for m in found if m in modules and m != name}
        if is_package:
            found = {m for m in found if not m.startswith(name + ".")}
        graph[name] = found
    return graph


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


MODULES = module_names()
GRAPH = imports(MODULES)


def test_every_component_has_a_layer():
    unplaced = sorted({component(m) for m in MODULES} - set(LAYER))
    assert not unplaced, f"place {unplaced} in LAYERS of {Path(__file__).name}"


def against_the_layers(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a placed component from a layer above it or from another component beside it."""
    wrong = []
    for m, targets in sorted(graph.items()):
        for t in sorted(targets):
            own, other = component(m), component(t)
            if own != other and own in LAYER and other in LAYER and LAYER[other] >= LAYER[own]:
                wrong.append(f"{m} imports {t}: {other} is {'beside' if LAYER[other] == LAYER[own] else 'above'} {own}")
    return wrong


def test_no_module_imports_from_a_layer_above_its_own_or_beside_it():
    assert not against_the_layers(GRAPH), "\n".join(against_the_layers(GRAPH))


def test_no_import_cycle_between_modules():
    assert not cycles(GRAPH)


def test_the_reader_sees_function_level_and_relative_imports(tmp_path):
    """The checks above can fail: a lazy upward import and a relative import are both found."""
    pkg = tmp_path / "msda_cli"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from msda_cli import cli\n")
    (pkg / "cli.py").write_text("from msda_cli.errors import f\n")
    (pkg / "engine" / "__init__.py").write_text("from . import train\n")
    (pkg / "engine" / "train.py").write_text("from ..errors import f\nfrom .. import runs\n")
    (pkg / "runs.py").write_text("import msda_cli.engine.train\n")
    graph = imports(module_names(pkg))
    assert graph["msda_cli.errors"] == {"msda_cli.cli"}
    assert graph["msda_cli.engine"] == set()  # a package's own modules are its contents
    assert graph["msda_cli.engine.train"] == {"msda_cli.errors", "msda_cli.runs"}
    assert cycles(graph) == [["msda_cli.cli", "msda_cli.errors"],
                             ["msda_cli.engine.train", "msda_cli.runs"]]
    assert against_the_layers(graph) == ["msda_cli.engine.train imports msda_cli.runs: runs is above engine",
                                         "msda_cli.errors imports msda_cli.cli: cli is above errors"]
    assert against_the_layers({"msda_cli.analysis.gradprod": {"msda_cli.robust.attacks"}}) == [
        "msda_cli.analysis.gradprod imports msda_cli.robust.attacks: robust is beside analysis"]
