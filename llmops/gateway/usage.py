"""The append-only usage log (JSONL, one line per request) and its summary for `llmops gateway usage`.

Lines are queued on the event loop and appended in batches from a thread, so a slow disk never delays
a request. No prompt text unless `log_prompts: true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.gateway import jsonc

FLUSH_EVERY_S = 1.0
FLUSH_LINES = 512


_second: list = [-1, ""]  # the last whole second formatted, and its text


def utc_now_ms() -> str:
    """Now as ISO 8601 UTC with milliseconds ('2025-01-31T12:00:00.123+00:00'), the usage log's `time`;
    the date and time of day are formatted once per second."""
    now = time.time()
    sec = int(now)
    if sec != _second[0]:
        _second[0], _second[1] = sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{int((now - sec) * 1000):03d}+00:00"


def default_path() -> Path:
    from llmops.paths import user_data_dir

    return user_data_dir() / "gateway" / "usage.jsonl"


class UsageLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[bytes] = []
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.trace: Any = None  # llmops.gateway.looplag.LagTrace when tracing loop lag

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, record: dict[str, Any]) -> None:
        self.pending.append(jsonc.dumps(record))
        if len(self.pending) >= FLUSH_LINES:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_EVERY_S)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        took = await asyncio.to_thread(self._append, lines)
        if self.trace is not None:
            self.trace.add("usage_batches")
            self.trace.add("usage_write_s", took)  # in the thread, beside the loop

    def _append(self, lines: list[bytes]) -> float:
        t0 = time.perf_counter()
        with self.path.open("ab") as f:
            f.write(b"\n".join(lines) + b"\n")
        return time.perf_counter() - t0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()


def read_spend(path: Path) -> dict[str, float]:
    """USD per key name in an existing log (so an in-memory budget survives a restart)."""
    spent: dict[str, float] = defaultdict(float)
    if path.is_file():
        for rec in _records(path):
            if rec.get("key"):
                spent[rec["key"]] += float(rec.get("cost_usd") or 0.0)
    return dict(spent)


def _records(path: Path):
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a torn last line from a crash: skip it


DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_s(text: str) -> float | None:
    """'90s', '10m', '2h', '7d' in seconds; None when the text is not such a duration."""
    text = text.strip()
    if text[-1:] in DURATION_UNITS and text[:-1].replace(".", "", 1).isdigit():
        return float(text[:-1]) * DURATION_UNITS[text[-1]]
    return None


def parse_since(since: str | None) -> datetime | None:
    """'30m', '2h', '7d' ago, or an ISO date/time."""
    if not since:
        return None
    if (ago := duration_s(since)) is not None:
        return datetime.now(UTC) - timedelta(seconds=ago)
    try:
        t = datetime.fromisoformat(since)
    except ValueError:
        raise UsageError(
            f"--since {since!r} is neither a duration nor a date", hint="use 30m, 2h, 7d or 2025-01-31"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def summarize(path: Path, *, since: str | None = None, by: str = "key") -> dict[str, Any]:
    """Requests, errors, tokens, cost and latency per key, route or deployment."""
    if by not in ("key", "route", "deployment"):
        raise UsageError(f"--by {by!r}: choose key, route or deployment")
    if not path.is_file():
        raise UsageError(f"no usage log at {path}", hint="run `llmops gateway` first, or pass --log FILE")
    start = parse_since(since)
    groups: dict[str, dict[str, Any]] = {}
    for rec in _records(path):
        if start is not None and datetime.fromisoformat(rec["time"]) < start:
            continue
        name = str(rec.get(by) or (rec.get("asked") if by == "route" else None) or "-")
        g = groups.setdefault(
            name,
            {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "_lat": []},
        )
        g["requests"] += 1
        g["errors"] += int(rec.get("status", 0)) >= 400
        g["input_tokens"] += int(rec.get("input_tokens") or 0)
        g["output_tokens"] += int(rec.get("output_tokens") or 0)
        g["cost_usd"] += float(rec.get("cost_usd") or 0.0)
        g["_lat"].append(float(rec.get("latency_ms") or 0.0))
    rows = []
    for name, g in sorted(groups.items()):
        lat = sorted(g.pop("_lat"))
        g["p50_latency_ms"] = round(lat[len(lat) // 2], 1) if lat else None
        g["cost_usd"] = round(g["cost_usd"], 6)
        rows.append({by: name, **g})
    return {"log": str(path), "since": start.isoformat() if start else None, "by": by, "rows": rows}
