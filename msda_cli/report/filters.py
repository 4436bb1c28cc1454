"""`--where key=value` into matchers, and the check that every key a user names exists."""

from __future__ import annotations

import re
from typing import Iterable

from msda_cli.errors import MsdaError
from msda_cli.report.frame import Prepared
from msda_cli.report.match import Eq, Match, Not, OneOf

WHERE_RE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(!=|=)(.*)$")


def parse_where(items: Iterable[str]) -> dict[str, Match]:
    """`key=value` (`key=a,b` for any of, `key!=value` for not); MsdaError on bad syntax."""
    out: dict[str, Match] = {}
    for item in items or ():
        m = WHERE_RE.match(item or "")
        if not m or not m.group(3).strip():
            raise MsdaError(f"--where expects key=value (e.g. mixer.r=0.5 or method=mixup,cutmix), got {item!r}")
        key, op, text = m.group(1), m.group(2), m.group(3).strip()
        parts = [p.strip() for p in text.split(",") if p.strip()]
        matcher: Match = Eq(parts[0]) if len(parts) == 1 else OneOf(*parts)
        if op == "!=":
            matcher = Not(matcher)
        if key in out:
            raise MsdaError(f"--where gives {key!r} twice; use {key}=a,b for either value")
        out[key] = matcher
    return out


def split_params(where: dict[str, Match]) -> tuple[dict[str, Match], dict[str, Match]]:
    """(run-level filters, metric-parameter filters without their `params.` prefix)."""
    runs = {k: v for k, v in where.items() if not k.startswith("params.")}
    params = {k.removeprefix("params."): v for k, v in where.items() if k.startswith("params.")}
    return runs, params


def check_keys(prep: Prepared, keys: Iterable[str], what: str, known: Iterable[str] = ()) -> None:
    """MsdaError naming the first key that no run column, config or metric parameter has."""
    known = set(known)
    for key in keys:
        if key in known or prep.has_key(key):
            continue
        run_keys = sorted(set(prep.columns) | set(prep.subset))
        cfg_keys = [k for k in prep.config_keys() if k not in run_keys]
        hint = ", ".join(run_keys + cfg_keys[:15]) + (", ..." if len(cfg_keys) > 15 else "")
        raise MsdaError(f"{what}: unknown key {key!r} (in no run's columns, config or metric parameters); "
                        f"known keys include: {hint or 'none (the store has no runs)'}")
