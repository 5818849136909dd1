"""State shared through a real redis-server: three gateway processes enforce one RPM, one budget, one breaker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from tests.gateway.conftest import KEY, gateway_processes, openai_section, run_gateway

MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def three_gateways(upstream, flush_redis: str, tmp_path: Path) -> Iterator[list[str]]:
    """Three `llmops gateway` processes sharing one Redis, a key with rpm: 10."""
    up = upstream(tokens=2)
    section = openai_section(up.v1, redis=flush_redis)
    section["keys"] = [{"name": "ci", "key_env": "CI_KEY", "rpm": 10}]
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(yaml.safe_dump({"gateway": section}))
    with gateway_processes(cfg, 3, {"CI_KEY": KEY}, tmp_path) as running:
        yield [url for _, url in running]


def test_three_processes_admit_no_more_than_the_rpm(three_gateways: list[str]) -> None:
    def call(i: int) -> int:
        url = three_gateways[i % 3]
        r = httpx.post(
            url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={"model": "chat", "messages": MSG, "max_tokens": 2},
            timeout=20,
        )
        return r.status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(call, range(30)))
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 20


def test_cooldown_and_spend_are_shared(upstream, flush_redis: str, tmp_path: Path) -> None:
    bad, good = upstream(fault="status500"), upstream(tokens=2)
    section = openai_section(
        bad.v1,
        good.v1,
        redis=flush_redis,
        strategy="weighted",
        breaker={"failures": 1, "cooldown_s": 30, "error_ratio": None},
    )
    section["routes"][0]["deployments"][0]["weight"] = 1e6
    section["routes"][0]["deployments"][1].update(input_per_1m=1000, output_per_1m=1000)
    section["keys"] = [{"name": "ci", "key_env": "CI_KEY", "budget_usd": 0.000001}]
    env = {"CI_KEY": KEY}
    with run_gateway(section, tmp_path, env) as a, run_gateway(section, tmp_path, env) as b:
        headers = {"authorization": f"Bearer {KEY}"}
        body = {"model": "chat", "messages": MSG, "max_tokens": 2}
        r = httpx.post(a.v1 + "/chat/completions", json=body, headers=headers, timeout=20)
        assert r.status_code == 200 and r.headers["x-llmops-deployment"] == "d1"
        assert bad.stats()["requests"] == 1, "one failed try on d0 (weight) tripped its breaker"
        time.sleep(0.4)  # replicas read shared cool-downs at most every 0.25 s
        r = httpx.post(b.v1 + "/chat/completions", json=body, headers=headers, timeout=20)
        assert r.status_code == 402, "replica b sees the spend replica a recorded"
        assert httpx.get(b.url + "/health/ready").json()["routes"] == {"chat": True}
        assert b.sample("llmops_gateway_deployment_healthy", route="chat", deployment="d0") == 0
        assert bad.stats()["requests"] == 1
