"""A calibration server (llmops.bench.fake_server) in its own process, with known TTFT and token gap."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from llmops.bench.fake_server import spawn
from tests.browser import browser  # noqa: F401  (the shared headless Chromium fixture)


@pytest.fixture
def fake_server() -> Iterator[Callable[..., str]]:
    """fake_server(ttft_ms=50, gap_ms=10, tokens=16, die_after=None, stall_after=None) -> base URL."""
    procs: list[subprocess.Popen] = []

    def start(ttft_ms: float = 50, gap_ms: float = 10, tokens: int | None = 16, **extra: object) -> str:
        proc, base = spawn(ttft_ms, gap_ms, tokens=tokens, **extra)
        procs.append(proc)
        return base

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(5)
