"""A cell's plan resolved as `msda train` resolves it: the config its runs store, and the setting that filters them.

`resolve(plan)` turns a plan into the request of `msda train --recipe R [--method M] [--arch A]
[--set K=V ..]` and resolves it with msda_cli.engine.launch.resolve_configs, the path training
takes, so the config a run made from the plan stores is the one the cell compares runs with. A
cell counts the runs of its plan's setting (msda_cli.report.settings); `--epochs N` and `--set`
(of `msda reproduce`) make another setting, and their runs fill no full-length cell.
Resolutions are cached per (plan, epochs, sets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from msda_cli.errors import MsdaError
from msda_cli.report.settings import setting, setting_text
from msda_cli.report.spec import Plan


@dataclass(frozen=True, eq=False)
class Resolved:
    """A plan as `msda train` resolves it (seed aside)."""

    plan: Plan
    recipe: str
    methods: tuple[str, ...]  # `--method` where it is not the recipe's own, else ()
    archs: tuple[str, ...]  # `--arch` likewise
    sets: tuple[str, ...]
    epochs: int | None
    config: dict  # the resolved config, as a run made from the plan stores it (seed 0)
    setting: dict  # its setting (msda_cli.report.settings)
    text: str  # the setting's text: equal texts, one setting

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def arch(self) -> str:
        return self.config["arch"]

    @property
    def method(self) -> str:
        return self.config["method"]

    def overrides(self) -> list[str]:
        """The options beyond `--recipe` that make the plan, as a user types them."""
        out = [f"--method {m}" for m in self.methods] + [f"--arch {a}" for a in self.archs]
        out += [f"--set {s}" for s in self.sets]
        return out + ([f"--epochs {self.epochs}"] if self.epochs is not None else [])

    def request(self, seed: int, data_dir: str | None = None, subset_id: str | None = None):
        """The TrainRequest of one run of the plan."""
        from msda_cli.engine.launch import TrainRequest

        return TrainRequest(recipe=self.recipe, methods=list(self.methods), archs=list(self.archs), seeds=[seed],
                            epochs=self.epochs, sets=list(self.sets), data_dir=data_dir, subset_id=subset_id)


def resolve(plan: Plan, epochs: int | None = None, sets: tuple[str, ...] = ()) -> Resolved:
    """The plan resolved, with `--epochs`/`--set` of a shortened reproduction; MsdaError if it cannot be
    (an untrainable plan, a plan without a recipe, or a bad override)."""
    if plan.untrainable:
        raise MsdaError(f"this cell cannot be trained: {plan.untrainable}")
    if not plan.recipe:
        raise MsdaError("this cell's plan names no recipe")
    return _resolve(plan, epochs, tuple(sets))


@lru_cache(maxsize=4096)
def _resolve(plan: Plan, epochs: int | None, sets: tuple[str, ...]) -> Resolved:
    from msda_cli.config import read_recipe
    from msda_cli.engine.launch import TrainRequest, resolve_configs

    recipe = plan.recipe_name
    raw = read_recipe(recipe)
    methods = (plan.method,) if plan.method and plan.method != raw.get("method", "vanilla") else ()
    archs = (plan.arch,) if plan.arch and plan.arch != raw.get("arch") else ()
    all_sets = plan.sets + sets
    req = TrainRequest(recipe=recipe, methods=list(methods), archs=list(archs), seeds=[0], epochs=epochs,
                       sets=list(all_sets))
    config = json.loads(resolve_configs(req)[0].model_dump_json())
    flat = setting(config)
    return Resolved(plan, recipe, methods, archs, all_sets, epochs, config, flat, setting_text(flat))
