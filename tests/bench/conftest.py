"""A calibration server (llmops.bench.fake_server) in its own process, with known TTFT and token gap."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_server() -> Iterator[Callable[..., str]]:
    """fake_server(ttft_ms=50, gap_ms=10, tokens=16, die_after=None, stall_after=None) -> base URL."""
    procs: list[subprocess.Popen] = []

    def start(ttft_ms: float = 50, gap_ms: float = 10, tokens: int | None = 16, **extra: object) -> str:
        port = _port()
        argv = [
            sys.executable,
            "-m",
            "llmops.bench.fake_server",
            "--port",
            str(port),
            "--ttft-ms",
            str(ttft_ms),
            "--gap-ms",
            str(gap_ms),
        ]
        if tokens is not None:
            argv += ["--tokens", str(tokens)]
        for k, v in extra.items():
            if v is not None:
                argv += [f"--{k.replace('_', '-')}", str(v)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("listening"), line
        return f"http://127.0.0.1:{port}"

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(5)
