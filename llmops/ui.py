"""Rendering for people (rich, on a terminal) and for scripts (--json on stdout). CLI-side only."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def interactive() -> bool:
    """Progress bars and spinners only for a person at a terminal."""
    return err.is_terminal


def to_jsonable(obj: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*("" if v is None else escape(str(v)) for v in row))
    return t


def hint(message: str) -> None:
    """A hint on stderr; the text is escaped, so paths and engine log lines never read as rich markup."""
    err.print(f"[dim]{escape(message)}[/dim]", highlight=False)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


class RichProgress:
    """A ProgressReporter drawing a rich progress bar on stderr (only when it is a terminal)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: float | None, description: str) -> None:
        if not interactive():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._progress.start()
        # descriptions and fields carry file names and library log text: never rich markup
        self._task = self._progress.add_task(escape(description), total=total, info="")

    def update(self, advance: float = 1, **fields: Any) -> None:
        if self._progress is not None:
            info = escape(" ".join(f"{k}={v}" for k, v in fields.items()))
            self._progress.update(self._task, advance=advance, info=info)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
