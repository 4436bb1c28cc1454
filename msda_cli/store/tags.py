"""Run tags: stored in one text column as comma-separated sorted words (`--where tag=x`: report.filters)."""

from __future__ import annotations

import re
from typing import Iterable

from msda_cli.errors import MsdaError

TAG_RE = re.compile(r"^[\w.\-+:/]{1,64}$")
TAG_KEY = "tag"  # the `--where` key that matches any one of a run's tags


def split_tags(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t]


def check_tags(tags: Iterable[str]) -> list[str]:
    """The tags as given, each checked (letters, digits and . - + : / _, at most 64); MsdaError otherwise."""
    tags = list(tags)
    for tag in tags:
        if not TAG_RE.match(tag):
            raise MsdaError(f"bad tag {tag!r}: use 1-64 letters, digits or . - + : / _ (no commas or spaces)")
    return tags


def join_tags(tags: Iterable[str]) -> str:
    return ",".join(sorted(set(tags)))

