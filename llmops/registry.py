"""The one registry shape for things that come in several kinds (engines, batch backends, quantizers...).

Entries are registered by name with a `module:attribute` reference, so the module (and the heavy library
behind it) is imported only when that kind is used: `--help` never pays for it. Unknown names are a
UsageError listing the known ones, with a close match when there is one.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from llmops.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> lazily imported object; `what` names the kind in errors ("engine", "batch backend")."""

    def __init__(self, what: str, entries: dict[str, str], *, flag: str | None = None) -> None:
        self.what = what
        self.flag = flag
        self._refs = dict(entries)
        self._loaded: dict[str, T] = {}

    def names(self) -> list[str]:
        return list(self._refs)

    def __contains__(self, name: object) -> bool:
        return name in self._refs

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def register(self, name: str, ref: str) -> None:
        """Add a kind: `ref` is 'package.module:attribute'."""
        self._refs[name] = ref
        self._loaded.pop(name, None)

    def get(self, name: str) -> T:
        """The registered object, imported on first use."""
        if name not in self._refs:
            close = difflib.get_close_matches(name, self._refs, n=1)
            did = f"; did you mean '{close[0]}'?" if close else ""
            where = f" ({self.flag})" if self.flag else ""
            raise UsageError(
                f"unknown {self.what} '{name}'{where}{did}", hint=f"use one of: {', '.join(self._refs)}"
            )
        if name not in self._loaded:
            module, _, attr = self._refs[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attr)
        return self._loaded[name]

    def items(self) -> Iterator[tuple[str, T]]:
        """Every entry, imported (for listings such as `doctor`)."""
        for name in self._refs:
            yield name, self.get(name)
