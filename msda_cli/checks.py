"""One idiom for checking a value: a whole number or a finite number in a range, or one of a few choices.

Commands, registries, data sets, architectures and methods call these three. Each returns the value it
accepted (an int, a float, the choice) or raises MsdaError in one of two shapes:

    NAME must be REQUIREMENT[ (NOTE)], got VALUE     `--eps must be in [0, 255] (pixel units), got 300`
    unknown KIND 'VALUE'; choose from: A, B          `unknown attack 'cw'; choose from: fgsm, pgd`

REQUIREMENT says the whole range: `a whole number`, `at least 1`, `in (0, 1]`, `a positive finite
number`, ... A float outside its range or not finite fails with the same sentence.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from msda_cli.errors import MsdaError

OPEN_ENDS = ("", "min", "max", "both")


def shown(value: Any) -> str:
    """A value as a message prints it: 3, 0.25, inf, True, 'text'."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{float(value):g}"
    return repr(value)


def _fail(name: str, requirement: str, value: Any, note: str):
    raise MsdaError(f"{name} must be {requirement}{f' ({note})' if note else ''}, got {shown(value)}")


def check_int(name: str, value: Any, min: int | None = None, max: int | None = None, note: str = "") -> int:
    """`value` as an int: a whole number (an int, or a float without a fraction; never a bool) in [min, max]."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, bool) or not whole:
        _fail(name, "a whole number", value, note)
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        requirement = (f"in [{min}, {max}]" if min is not None and max is not None
                       else f"at least {min}" if min is not None else f"at most {max}")
        _fail(name, requirement, value, note)
    return value


def check_float(name: str, value: Any, min: float | None = None, max: float | None = None, open: str = "",
                note: str = "") -> float:
    """`value` as a finite float in [min, max]; `open` ("min", "max" or "both") leaves those ends out.

    Never infinite nor NaN (an infinity hangs the Beta and Gamma samplers). Text that reads as a number
    counts (YAML leaves `inf` and `1e-3` as text); a bool does not.
    """
    if open not in OPEN_ENDS:
        raise ValueError(f"open must be one of {OPEN_ENDS}, got {open!r}")
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        _fail(name, "a number", value, note)
    low_open, high_open = open in ("min", "both"), open in ("max", "both")
    too_low = min is not None and (number <= min if low_open else number < min)
    too_high = max is not None and (number >= max if high_open else number > max)
    if not math.isfinite(number) or too_low or too_high:
        _fail(name, _float_range(min, max, low_open, high_open), number, note)
    return number


def _float_range(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{shown(low)}, {shown(high)}{')' if high_open else ']'}"
    if low == 0:
        return "a positive finite number" if low_open else "a non-negative finite number"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {shown(low)}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {shown(high)}"
    return "a finite number"


def check_choice(kind: str, value: Any, choices: Iterable) -> Any:
    """`value` if it is one of `choices`, else MsdaError naming the kind of thing and listing the choices."""
    choices = tuple(choices)
    if value not in choices:
        raise MsdaError(f"unknown {kind} {value!r}; choose from: {', '.join(map(str, choices))}")
    return value
