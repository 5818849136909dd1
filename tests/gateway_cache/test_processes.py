"""Two gateway processes (`llmops gateway` as real subprocesses) sharing one real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
import yaml

from tests.conftest import free_port, wait_http

ASK = {
    "model": "chat",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "temperature": 0,
    "max_tokens": 8,
}


@contextmanager
def gateway_process(config: Path, log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmops", "--config", str(config), "gateway", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_hit_stored_by_one_gateway_process_is_served_by_another(
    upstream, tmp_path: Path, redis_url: str
) -> None:
    up = upstream(ttft_ms=2, gap_ms=0, tokens=4)
    config = tmp_path / "llmops.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {
                    "redis": redis_url,
                    "usage_log": str(tmp_path / "usage.jsonl"),
                    "cache": {"exact": {"ttl": 60}, "semantic": {"threshold": 0.95}},
                    "routes": [{"name": "chat", "deployments": [{"url": up.v1, "model": "stub-model"}]}],
                }
            }
        )
    )
    store = redis.Redis.from_url(redis_url)
    paraphrase = {**ASK, "messages": [{"role": "user", "content": "What's the capital of France?"}]}
    with (
        gateway_process(config, tmp_path / "a.log") as a,
        gateway_process(config, tmp_path / "b.log") as b,
        httpx.Client(timeout=30) as http,
    ):
        first = http.post(a + "/v1/chat/completions", json=ASK)
        assert first.headers["x-llmops-cache"] == "miss"
        deadline = time.monotonic() + 5  # a stores the reply once the client has all of it
        while not store.keys("llmops:cache:chat:e:*"):
            assert time.monotonic() < deadline, "the entry never reached Redis"
            time.sleep(0.02)
        second = http.post(b + "/v1/chat/completions", json=ASK)
        assert second.headers["x-llmops-cache"] == "hit"
        assert second.json() == first.json()
        similar = http.post(b + "/v1/chat/completions", json=paraphrase)
        assert similar.headers["x-llmops-cache"] == "semantic-hit"
        assert float(similar.headers["x-llmops-cache-similarity"]) >= 0.95
    store.close()
    assert up.stats()["requests"] == 1
