"""Recipes: YAML files validated by a pydantic schema, with `--set key=value` overrides.

A recipe names a data set, an architecture, a method with its hyperparameters (`mixer`),
the optimizer, the schedule and the run length. `method_defaults` holds per-method
hyperparameters the recipe's paper used, so `--method gmix` on a CIFAR-100 recipe trains
GMix with the paper's α rather than the recipe method's. Likewise `model` options belong
to the recipe's own architecture and are dropped when `--arch` names another one.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import os
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError, field_validator

from msda_cli.errors import MsdaError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"  # a link to the top-level recipes/ in a checkout


class Strict(BaseModel):
    # Numbers are typed strictly (no `true` for a count, no text for a rate) and finite.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OptimConfig(Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: StrictFloat = Field(0.1, gt=0)
    momentum: StrictFloat = Field(0.9, ge=0, lt=1)
    weight_decay: StrictFloat = Field(5e-4, ge=0)
    nesterov: StrictBool = False
    betas: tuple[StrictFloat, StrictFloat] = (0.9, 0.999)
    eps: StrictFloat = Field(1e-8, gt=0)  # adam, adamw (torch's default)


class ScheduleConfig(Strict):
    name: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: StrictFloat = Field(0, ge=0)
    milestones: list[StrictInt] = Field(default_factory=list)  # epochs at which step decays lr
    gamma: StrictFloat = Field(0.1, gt=0, le=1)  # step decay factor
    min_lr: StrictFloat = Field(0.0, ge=0)


class DataConfig(Strict):
    root: Optional[str] = None  # local copy of the data set (`--data-dir`)
    download: StrictBool = False  # let torchvision fetch the files into `root` (`--download`)
    augment: StrictBool = True
    cutout: StrictInt = Field(0, ge=0)  # side (px) of one Cutout hole per image before the method mixes (0: none)
    workers: StrictInt = Field(2, ge=0)
    # device: sets held in memory are batched, cropped and flipped on the training device (data/pipeline.py);
    # loader: per-sample transforms in a DataLoader (always for image files)
    pipeline: Literal["device", "loader"] = "device"
    options: dict[str, Any] = Field(default_factory=dict)  # passed to build_dataset (image_size, crop, ...)
    # held out of the training split (stratified, seeded by the run's seed): val_top1/val_loss every epoch
    val_fraction: StrictFloat = Field(0.0, ge=0, lt=1)


def cores_given() -> int:
    """The CPU cores a run is given: OMP_NUM_THREADS where set (the parallel launcher passes each child
    its share, torchrun 1 per process), else every core this process may run on."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Config(Strict):
    name: str = ""
    description: str = ""
    paper_table: str = ""  # the paper table this recipe reproduces, e.g. "hmix-gmix Table 2"
    dataset: str
    data: DataConfig = Field(default_factory=DataConfig)
    arch: str
    model: dict[str, Any] = Field(default_factory=dict)  # passed to build_model
    method: str = "vanilla"
    mixer: dict[str, Any] = Field(default_factory=dict)  # hyperparameters of `method`
    method_defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    epochs: StrictInt = Field(gt=0)
    batch_size: StrictInt = Field(128, gt=0)
    eval_batch_size: StrictInt = Field(256, gt=0)
    seed: StrictInt = Field(0, ge=0, lt=2**32)  # the range of NumPy's global seed (accelerate's set_seed)
    precision: Literal["no", "fp16", "bf16"] = "no"
    grad_clip: Optional[StrictFloat] = Field(None, gt=0)
    # Polyak averaging of the weights, updated every step (timm's ModelEmaV3): its decay, 0 = off
    ema: StrictFloat = Field(0.0, ge=0, lt=1)
    checkpoint_every: StrictInt = Field(1, ge=1)  # epochs between checkpoints
    checkpoint_keep: Literal["last", "best", "both"] = "last"  # best: best.pt, the epoch of highest test top-1
    channels_last: StrictBool = False
    # torch.compile in place (same state dict keys); off: digits' 1st epoch 54.6 s compiled (3.4 s cache warm) vs 1.5
    compile: StrictBool = False
    # digits, 2 cores: one run 0.30 s/epoch at 2 threads vs 0.52 at 1; --jobs 2: 0.56 at 1 thread each vs 7.8 at 2 each
    threads: StrictInt = Field(default_factory=cores_given, ge=1)  # torch CPU threads: the cores the run is given

    @field_validator("name", "dataset", "arch", "method")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()


# ----- loading --------------------------------------------------------------------
def recipe_path(name_or_file: str, near: Path | None = None) -> Path:
    """The file of a recipe; `near` (the folder of a recipe that extends this one) is searched first."""
    path = Path(name_or_file)
    if near is not None and not path.is_absolute():
        for candidate in (near / path, near / f"{name_or_file}.yaml"):
            if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
                return candidate
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = RECIPES_DIR / f"{name_or_file}.yaml"
    if candidate.is_file():
        return candidate
    if path.suffix in (".yaml", ".yml"):
        raise MsdaError(f"recipe file {path} does not exist")
    names = ", ".join(list_recipe_names())
    raise MsdaError(f"unknown recipe {name_or_file!r}; choose from: {names} (or give a .yaml file)")


def list_recipe_names() -> list[str]:
    """Recipes a user can train; files starting with `_` are shared bases for `extends:`."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def _parsed(path: Path):
    """A recipe file's YAML, parsed once per version of the file (planning a grid table reads each
    recipe thousands of times); callers copy before changing it."""
    st = path.stat()
    return _parse_file(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _parse_file(path: str, _mtime_ns: int, _size: int):
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise MsdaError(f"recipe {path} is not valid YAML: {str(e).splitlines()[0]}") from None


def recipe_chain(name_or_file: str) -> list[Path]:
    """The recipe's file and the files it extends, base first."""
    chain: list[Path] = []
    current: str | None = name_or_file
    near: Path | None = None
    while current is not None and len(chain) < 32:
        path = recipe_path(str(current), near)
        near = path.parent
        chain.insert(0, path)
        raw = _parsed(path) or {}
        current = raw.get("extends") if isinstance(raw, dict) else None
    return chain


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_recipe(name_or_file: str, _seen: tuple = (), near: Path | None = None) -> dict:
    """A recipe as a raw dict; `extends: BASE` merges the recipe over another one (BASE is looked up
    beside the recipe's file first, then among the packaged recipes)."""
    path = recipe_path(name_or_file, near)
    raw = copy.deepcopy(_parsed(path))
    if not isinstance(raw, dict):
        raise MsdaError(f"recipe {path} must be a mapping of keys to values")
    base = raw.pop("extends", None)
    if base is not None:
        if base in _seen:
            raise MsdaError(f"recipe {path}: `extends` forms a cycle through {base!r}")
        raw = deep_merge(read_recipe(str(base), _seen + (base,), near=path.parent), raw)
    raw["name"] = path.stem
    return raw


def validate(raw: dict, source: str = "recipe") -> Config:
    """Validate a raw dict; the first problem becomes one MsdaError line."""
    bad = _non_finite(raw)
    if bad is not None:  # open sections (mixer, model, data.options) too: .inf would hang a sampler
        raise MsdaError(f"{source}: {bad[0]}: Input should be a finite number (got {bad[1]!r})")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = _model_at(err["loc"][:-1])
            valid = ", ".join(sorted(parent.model_fields)) if parent else ""
            msg = f"unknown key; valid keys here: {valid}"
        shows_input = err["type"] != "extra_forbidden" and not isinstance(err.get("input"), dict)
        raise MsdaError(f"{source}: {where}: {msg}" + (f" (got {err['input']!r})" if shows_input else "")) from None


def _non_finite(node, path: tuple = ()) -> tuple[str, float] | None:
    """The dotted key and value of the first infinite or NaN number in a raw recipe, if any."""
    if isinstance(node, float) and not math.isfinite(node):
        return ".".join(path) or "(top level)", node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
    for key, value in items:
        found = _non_finite(value, path + (str(key),))
        if found is not None:
            return found
    return None


def _model_at(loc) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


# ----- overrides ------------------------------------------------------------------
OPEN_DICTS = ("mixer", "model", "data.options", "method_defaults")


def parse_assignment(item: str) -> tuple[str, Any]:
    """`--set key=value` -> (key, value parsed as a YAML scalar; text YAML cannot parse stays text)."""
    if "=" not in item:
        raise MsdaError(f"--set expects key=value, got {item!r}")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """Several `--set key=value` as a dict (a later key wins), e.g. a method's hyperparameters."""
    return dict(parse_assignment(item) for item in items or [])


def apply_set(raw: dict, assignments: list[str]) -> dict:
    """Apply `key.sub=value` overrides (values parsed as YAML scalars). Unknown keys are errors."""
    raw = copy.deepcopy(raw)
    for item in assignments:
        key, value = parse_assignment(item)
        _check_key(key)
        set_dotted(raw, key, value)
    return raw


def set_dotted(raw: dict, key: str, value) -> None:
    """raw["a"]["b"] = value for key "a.b", creating sections as needed."""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise MsdaError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def _check_key(key: str) -> None:
    parts = key.split(".")
    if any(key.startswith(prefix + ".") for prefix in OPEN_DICTS):
        return
    model: type[BaseModel] = Config
    for i, part in enumerate(parts):
        if part not in model.model_fields:
            valid = ", ".join(sorted(_all_keys(model, ".".join(parts[:i]))))
            raise MsdaError(f"--set: unknown key {key!r}; valid keys: {valid}")
        ann = model.model_fields[part].annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif i < len(parts) - 1 and ".".join(parts[: i + 1]) not in OPEN_DICTS:
            raise MsdaError(f"--set: {'.'.join(parts[:i + 1])} has no sub-keys")


def _all_keys(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        full = f"{prefix}.{name}" if prefix else name
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_all_keys(ann, full))
        else:
            out.append(full)
    return out


# ----- resolving one run's config -----------------------------------------------------
def switch_method(raw: dict, method: str) -> dict:
    """The recipe with another method: that method's defaults from `method_defaults`,
    else no hyperparameters (the method's own defaults); label smoothing carries over."""
    raw = copy.deepcopy(raw)
    if method == raw.get("method"):
        return raw
    mixer = dict(raw.get("method_defaults", {}).get(method, {}))
    if "smoothing" in raw.get("mixer", {}):
        mixer.setdefault("smoothing", raw["mixer"]["smoothing"])
    raw["method"], raw["mixer"] = method, mixer
    return raw


def split_list(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def resolve_method_list(methods: list[str]) -> list[str]:
    """`all` stands for every registered method (vanilla first)."""
    if "all" not in methods:
        return methods
    from msda_cli.mixing import MIXERS

    every = ["vanilla"] + [m for m in sorted(MIXERS) if m != "vanilla"]
    out: list[str] = []
    for m in methods:
        out.extend(every if m == "all" else [m])
    return list(dict.fromkeys(out))


def expand(raw: dict, methods: list[str], archs: list[str], seeds: list[int]) -> list[dict]:
    """One raw config per (method, arch, seed) combination."""
    out = []
    for method, arch, seed in itertools.product(methods or [raw.get("method", "vanilla")],
                                                archs or [raw.get("arch")], seeds or [raw.get("seed", 0)]):
        one = switch_method(raw, method)
        if arch != raw.get("arch"):
            one["model"] = {}  # the recipe's model options belong to its own architecture
        one["arch"], one["seed"] = arch, seed
        out.append(one)
    return out


def check_names(cfg: Config) -> None:
    """Unknown dataset, architecture or method (or bad hyperparameters) before anything runs."""
    from msda_cli.data import DATASETS
    from msda_cli.mixing import build_mixer
    from msda_cli.models import architecture

    from msda_cli.data import check_dataset_options

    DATASETS.lookup(cfg.dataset)
    check_dataset_options(cfg.dataset, cfg.data.options)
    architecture(cfg.arch)  # a registered name or timm:NAME
    build_mixer(cfg.method, **cfg.mixer)
    if cfg.schedule.warmup_epochs > cfg.epochs:
        raise MsdaError(f"schedule.warmup_epochs ({cfg.schedule.warmup_epochs}) exceeds epochs ({cfg.epochs})")
