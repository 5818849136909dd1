"""Writing a bench's files: never over a user's file unless asked, and atomically (no half-written result)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmops.errors import UsageError


def check_writable(paths: list[Path], force: bool) -> None:
    """Refuse before the run, not after it, when an output would overwrite a file."""
    for p in paths:
        if p.exists() and not force:
            raise UsageError(
                f"{p} already exists", hint="choose another path, or pass --force to overwrite it"
            )
        if not p.parent.exists():
            raise UsageError(f"the folder of {p} does not exist", hint=f"create {p.parent} first")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_outputs(result, points, output: Path | None, html: Path | None) -> None:
    if output is not None:
        _write(output, json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
    if html is not None:
        from llmops.bench.report_html import render

        _write(html, render(result, points))
