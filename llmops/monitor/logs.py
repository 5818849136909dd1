"""Diagnose an engine's log (`llmops doctor --log FILE`) with the failure patterns serve already knows."""

from __future__ import annotations

import re
from pathlib import Path

from llmops.errors import UsageError
from llmops.monitor.diagnose import Diagnosis
from llmops.serve.engines import ENGINES, FailurePattern, get_engine
from llmops.serve.process import tail

MAX_BYTES = 20 * 2**20  # read at most the last 20 MiB of a huge log


def patterns(engine: str | None) -> list[FailurePattern]:
    """One engine's patterns, or every engine's (engine-specific first, shared ones once)."""
    if engine:
        return list(get_engine(engine).failures)
    seen: dict[str, FailurePattern] = {}
    for _, e in ENGINES.items():
        for p in e.failures:
            seen.setdefault(p.regex, p)
    return list(seen.values())


def read_log(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"log file {path} not found", hint="pass the engine log `llmops serve` printed")
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - MAX_BYTES))
        return f.read().decode("utf-8", "replace")


def diagnose_log(path: Path, engine: str | None = None) -> Diagnosis:
    text = read_log(path)
    d = Diagnosis(url=str(path), kind=engine or "log")
    for p in patterns(engine):
        m = re.search(p.regex, text, re.IGNORECASE | re.MULTILINE)
        if m:
            line = text[
                text.rfind("\n", 0, m.start()) + 1 : text.find("\n", m.end()) % (len(text) + 1)
            ].strip()
            d.add("log", "fail", f"{line[:200]}", p.diagnosis)
    if not d.findings:
        if re.search(r"Traceback|\bERROR\b|Error:", text):
            d.add("log", "warn", "an error llmops does not recognise; the last lines:\n" + tail(text, 10))
        else:
            d.add("log", "ok", "no known start-up failure in the log")
    return d
