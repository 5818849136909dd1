"""The labelled sets in tests/data, read once (shared by the tests and benchmarks/bench_gateway_cache.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"


def read_jsonl(name: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def turns(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] != "system"]
