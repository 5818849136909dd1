"""The progress observer that long-running logic reports to; the CLI passes a rich one, tests pass none."""

from __future__ import annotations

from typing import Any, Protocol


class ProgressReporter(Protocol):
    def start(self, total: float | None, description: str) -> None: ...

    def update(self, advance: float = 1, **fields: Any) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """Reports nowhere: the default for library calls and tests."""

    def start(self, total: float | None, description: str) -> None:
        pass

    def update(self, advance: float = 1, **fields: Any) -> None:
        pass

    def finish(self) -> None:
        pass
