"""Real servers on loopback: fake upstreams (llmops.bench.fake_server), the gateway (uvicorn in a thread,
or the CLI as a subprocess), and a real redis-server on a free port."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.bench.fake_server import spawn

KEY = "sk-test-ci-0123456789"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Upstream:
    proc: subprocess.Popen
    base: str  # http://127.0.0.1:PORT

    @property
    def v1(self) -> str:
        return self.base + "/v1"

    def fault(self, mode: str, retry_after: float = 1.0) -> None:
        httpx.post(self.base + "/fault", json={"mode": mode, "retry_after": retry_after}, timeout=5)

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.base + "/stats", timeout=5).json()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def upstream() -> Iterator[Callable[..., Upstream]]:
    """upstream(ttft_ms=5, gap_ms=1, tokens=4, fault=...) -> a fake OpenAI/Anthropic server process."""
    made: list[Upstream] = []

    def start(ttft_ms: float = 5, gap_ms: float = 1, tokens: int | None = 4, **extra: object) -> Upstream:
        proc, base = spawn(ttft_ms, gap_ms, tokens=tokens, **extra)
        made.append(Upstream(proc, base))
        return made[-1]

    yield start
    for u in made:
        if u.proc.poll() is None:
            u.proc.terminate()
            u.proc.wait(5)


@dataclass
class Running:
    url: str  # http://127.0.0.1:PORT
    gateway: Any  # llmops.gateway.pipeline.Gateway
    usage_path: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample on /metrics, parsed with prometheus_client's own parser."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.url + "/metrics", timeout=5).text
        out: dict[tuple[str, tuple], float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


@contextmanager
def run_gateway(
    section: dict[str, Any],
    tmp: Path,
    env: dict[str, str] | None = None,
    catalog: Any = None,
    loader: Callable[[], Any] | None = None,
) -> Iterator[Running]:
    """The gateway for this `gateway:` mapping, on uvicorn in a thread, on a free loopback port."""
    import uvicorn

    from llmops.gateway.app import create_app
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.pipeline import Gateway
    from llmops.gateway.table import build_table

    sec = GatewaySection.model_validate(section)
    table = build_table(sec, catalog)
    usage = tmp / f"usage-{time.monotonic_ns()}.jsonl"
    gw = Gateway(sec, table, environ=env or {}, usage_path=usage, loader=loader)
    port = free_port()
    config = uvicorn.Config(
        create_app(gw),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", gw, usage)
    finally:
        server.should_exit = True
        thread.join(15)


@contextmanager
def serve_app(app: Any) -> Iterator[int]:
    """A plain ASGI app (a test's own upstream or receiver) on uvicorn in a thread; yields its port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def gateway_processes(
    cfg: Path, n: int, env: dict[str, str], usage_dir: Path
) -> Iterator[list[tuple[Any, str]]]:
    """`n` real `llmops --config CFG gateway` processes on free ports, each with its own usage log under
    `usage_dir`; yields (process, base URL) once every one listens, stops them all at the end."""
    import os
    import sys

    root = str(Path(__file__).resolve().parents[2])
    procs, urls = [], []
    for i in range(n):
        port = free_port()
        cmd = [sys.executable, "-m", "llmops", "--config", str(cfg), "gateway", "--port", str(port), "--json"]
        usage = {"LLMOPS_GATEWAY_USAGE_LOG": str(usage_dir / f"u{i}" / "usage.jsonl"), "PYTHONPATH": root}
        procs.append(
            subprocess.Popen(
                cmd,
                env={**os.environ, **env, **usage},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for p in procs:  # each prints one JSON document once it listens
            assert p.stdout is not None
            text = ""
            while '"url"' not in text:
                line = p.stdout.readline()
                assert line, p.stderr.read() if p.stderr else "gateway exited"
                text += line
        yield list(zip(procs, urls, strict=True))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


def openai_section(*deployments: str, **extra: Any) -> dict[str, Any]:
    """A one-route section 'chat' over these OpenAI-compatible base URLs (fast timeouts for tests)."""
    section: dict[str, Any] = {
        "routes": [
            {
                "name": "chat",
                "deployments": [
                    {"url": u, "model": "stub-model", "name": f"d{i}"} for i, u in enumerate(deployments)
                ],
            }
        ],
        "timeouts": {"first_byte_s": 2, "stall_s": 1, "total_s": 8},
        "retries": {"attempts": 2, "backoff_s": 0.01},
    }
    section.update(extra)
    return section


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence; stopped at the end."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server (make install does it)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def flush_redis(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url
