"""Fixtures for the monitor tests: the real promtool, and rules generated from a known workspace."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port, wait_http

HERE = Path(__file__).resolve().parent
PROMTOOL_TESTS = HERE / "promtool"
# The workspace the promtool unit tests were written for: default thresholds, these SLOs.
TEST_SLOS = {"ttft_p99_ms": 2000, "error_rate": 0.01}


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: `make install` installs Debian's prometheus package")
    return path


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus is not installed: `make install` installs Debian's prometheus package")
    return path


# --- real servers on loopback -------------------------------------------------------------------------


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group we started, SIGKILL after 10 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass


@pytest.fixture
def fake() -> Iterator[Callable[..., str]]:
    """fake(fault="status429", ttft_ms=5, ...) -> base URL of a llmops.bench.fake_server process."""
    from llmops.bench.fake_server import spawn

    procs: list[subprocess.Popen] = []

    def start(ttft_ms: float = 5, gap_ms: float = 2, tokens: int | None = 4, **extra: object) -> str:
        proc, base = spawn(ttft_ms, gap_ms, tokens=tokens, **extra)
        procs.append(proc)
        return base

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(5)


def gateway_yaml(upstream_v1: str, tmp: Path, model: str = "stub-model", **extra: Any) -> dict[str, Any]:
    return {
        "gateway": {
            "routes": [{"name": "chat", "deployments": [{"url": upstream_v1, "model": model, "name": "d0"}]}],
            "timeouts": {"first_byte_s": 5, "stall_s": 2, "total_s": 30},
            "retries": {"attempts": 0},
            "usage_log": str(tmp / "usage.jsonl"),
            **extra,
        }
    }


@contextmanager
def gateway_process(config: dict[str, Any], tmp: Path) -> Iterator[str]:
    """`llmops gateway` as a real subprocess on a free loopback port; yields its root URL."""
    path = tmp / "gateway-llmops.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmops",
            "-c",
            str(path),
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "gateway.log").open("wb"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(url + "/health", timeout=60)
        except TimeoutError:
            raise RuntimeError(
                "gateway did not start: " + (tmp / "gateway.log").read_text()[-2000:]
            ) from None
        yield url
    finally:
        stop(proc)


def chat(base_v1: str, model: str = "chat", stream: bool = False, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        base_v1.rstrip("/") + "/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
            "stream": stream,
        },
        timeout=timeout,
    )
