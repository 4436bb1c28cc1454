"""Value matchers for table specs and `--where`: equality that compares numbers as numbers.

A filter is a mapping `key -> matcher`; a plain value means `Eq(value)`. Matchers test one
value at a time (`test`) and whole columns through their distinct values (`mask`), so a
filter over 10 000 runs costs one test per distinct value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from msda_cli.store.tags import split_tags


def is_missing(x: Any) -> bool:
    if x is None or x is pd.NA:
        return True
    return isinstance(x, (float, np.floating)) and math.isnan(x)


def as_bool(x: Any) -> bool | None:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, str) and x.strip().lower() in ("true", "false"):
        return x.strip().lower() == "true"
    return None


def as_number(x: Any) -> float | None:
    if isinstance(x, (bool, np.bool_)) or is_missing(x):
        return None
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


def scalar_equal(x: Any, v: Any, rel: float = 1e-9) -> bool:
    """x (a stored value) equals v (a filter value): numbers numerically, booleans as booleans."""
    if isinstance(v, str) and v.strip().lower() in ("null", "none"):
        v = None
    if is_missing(x) or is_missing(v):
        return is_missing(x) and is_missing(v)
    bx, bv = as_bool(x), as_bool(v)
    if bx is not None and bv is not None:
        return bx == bv
    nx, nv = as_number(x), as_number(v)
    if nx is not None and nv is not None:
        return math.isclose(nx, nv, rel_tol=rel, abs_tol=1e-12)
    if isinstance(v, (list, tuple, dict)):
        v = json.dumps(v, sort_keys=True)
    return str(x) == str(v)


class Match:
    """Base matcher: subclasses define `test(value) -> bool` and `describe() -> str`."""

    def test(self, x: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def mask(self, values: pd.Series | None, n: int) -> np.ndarray:
        """Boolean array over `values`; a missing column (None) is all-missing."""
        if values is None:
            return np.full(n, self.test(None), dtype=bool)
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        hits = np.fromiter((self.test(u) for u in uniques), dtype=bool, count=len(uniques))
        return hits[codes] if len(codes) else np.zeros(0, dtype=bool)


@dataclass(frozen=True)
class Eq(Match):
    value: Any

    def test(self, x):
        return scalar_equal(x, self.value)

    def describe(self):
        return _fmt(self.value)


@dataclass(frozen=True)
class OneOf(Match):
    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", tuple(values))

    def test(self, x):
        return any(scalar_equal(x, v) for v in self.values)

    def describe(self):
        return "{" + ", ".join(_fmt(v) for v in self.values) + "}"


@dataclass(frozen=True)
class Default(Match):
    """Equal to `value`, or not recorded at all (the method's default is `value`)."""

    value: Any

    def test(self, x):
        return is_missing(x) or scalar_equal(x, self.value)

    def describe(self):
        return f"{_fmt(self.value)} (or unset)"


@dataclass(frozen=True)
class Approx(Match):
    value: float
    rel: float = 0.01

    def test(self, x):
        n = as_number(x)
        return n is not None and math.isclose(n, self.value, rel_tol=self.rel)

    def describe(self):
        return f"≈{self.value:.4g}"


@dataclass(frozen=True)
class Gt(Match):
    value: float

    def test(self, x):
        n = as_number(x)
        return n is not None and n > self.value

    def describe(self):
        return f">{_fmt(self.value)}"


@dataclass(frozen=True)
class Present(Match):
    def test(self, x):
        return not is_missing(x) and x != ""

    def describe(self):
        return "set"


@dataclass(frozen=True)
class Not(Match):
    inner: Match

    def test(self, x):
        return not self.inner.test(x)

    def describe(self):
        return f"not {self.inner.describe()}"


@dataclass(frozen=True)
class Contains(Match):
    """Case-insensitive substring, ignoring '-', '_' and spaces ('ImageNet_O' contains 'imagenet-o')."""

    text: str

    def test(self, x):
        if is_missing(x):
            return False
        return _squash(self.text) in _squash(str(x))

    def describe(self):
        return f"~{self.text}"


def example_value(value: Any) -> Any:
    """A value that passes `value` (a matcher or a plain value): to fill test and benchmark stores."""
    if isinstance(value, (Eq, Default, Approx)):
        return value.value
    if isinstance(value, OneOf):
        return value.values[0]
    if isinstance(value, Gt):
        return value.value + 0.1
    if isinstance(value, Contains):
        return value.text
    if isinstance(value, Present):
        return "set"
    if isinstance(value, Not):
        raise ValueError("a Not matcher has no single example value")
    return value


def _squash(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch not in "-_ ")


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def as_matcher(v: Any) -> Match:
    return v if isinstance(v, Match) else Eq(v)


def tags_match(matcher: Match, text: str | None) -> bool:
    """`tag=x` holds when one of a run's tags (their stored text, msda_cli.store.tags) is x; `tag!=x` when none is."""
    if isinstance(matcher, Not):
        return not tags_match(matcher.inner, text)
    return any(matcher.test(tag) for tag in split_tags(text))
