"""Name -> factory registries (as timm does for models): adding an entry is one decorator."""

from __future__ import annotations

from typing import Callable, TypeVar

from msda_cli.errors import MsdaError

F = TypeVar("F", bound=Callable)


class Registry(dict):
    """A dict of factories keyed by name, with a `register` decorator and a helpful lookup."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str | None = None) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            key = name or fn.__name__
            if key in self:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self[key] = fn
            return fn

        return decorator

    def lookup(self, name: str) -> Callable:
        """The factory for `name`, or an MsdaError listing the valid names."""
        try:
            return self[name]
        except KeyError:
            raise MsdaError(
                f"unknown {self.kind} {name!r}; choose from: {', '.join(sorted(self))}"
            ) from None
