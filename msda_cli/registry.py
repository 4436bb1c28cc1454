"""Name -> factory registries (as timm does for models): adding an entry is one decorator.

An entry may declare its display label (`register("cutmix", label="CutMix")`): reports name it so,
and the labelled entries in registration order are the order of a report's rows and columns.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from msda_cli.checks import check_choice

F = TypeVar("F", bound=Callable)


class Registry(dict):
    """A dict of factories keyed by name, with a `register` decorator, display labels and a helpful lookup."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.labels: dict[str, str] = {}  # name -> display label, in registration order

    def register(self, name: str | None = None, label: str | None = None) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            key = name or fn.__name__
            if key in self:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self[key] = fn
            if label is not None:
                self.labels[key] = label
            return fn

        return decorator

    def label(self, name: str) -> str:
        """The display label of `name`: the one it was registered with, else the name itself."""
        return self.labels.get(name, name)

    def lookup(self, name: str) -> Callable:
        """The factory for `name`, or an MsdaError listing the valid names."""
        return self[check_choice(self.kind, name, sorted(self))]
