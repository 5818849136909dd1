"""Diagnosis and the live view against real servers on loopback: the fake streaming server with its fault
modes (llmops.bench.fake_server), and the real gateway (`llmops gateway` as a subprocess) in front of it."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.monitor import catalog as cat
from llmops.monitor.scrape import scrape
from tests.monitor.conftest import chat, gateway_process, gateway_yaml

runner = CliRunner()


def diagnose_json(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["monitor", "diagnose", *args, "--json"])
    return res.exit_code, json.loads(res.stdout)


def failed(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["status"] == "fail"]


def test_healthy_server_is_reported_healthy(fake: Callable[..., str]) -> None:
    code, doc = diagnose_json(fake() + "/v1", "--timeout", "5")
    assert code == 0 and doc["ok"] is True, doc
    assert doc["models"] == ["fake-model"] and doc["ttft_ms"] > 0
    assert {f["check"]: f["status"] for f in doc["findings"]}["request"] == "ok"


def test_429_is_named_rate_limit(fake: Callable[..., str]) -> None:
    code, doc = diagnose_json(fake(fault="status429", retry_after=3) + "/v1", "--timeout", "5")
    assert code == 1
    (f,) = failed(doc)
    assert "rate limited" in f["message"] and "429" in f["message"]
    assert "back off" in f["action"] and "Retry-After" in f["action"]


def test_stall_after_first_token_is_named(fake: Callable[..., str]) -> None:
    code, doc = diagnose_json(fake(fault="stall", tokens=8) + "/v1", "--timeout", "2")
    assert code == 1
    (f,) = failed(doc)
    assert "stalled" in f["message"] and "first token after" in f["message"]


def test_silent_server_is_a_slow_first_token(fake: Callable[..., str]) -> None:
    code, doc = diagnose_json(fake(fault="silent") + "/v1", "--timeout", "1.5")
    assert code == 1
    (f,) = failed(doc)
    assert "no first token within 1.5 s" in f["message"]


def test_nothing_listening_is_unreachable() -> None:
    from tests.conftest import free_port

    res = runner.invoke(app, ["doctor", "--endpoint", f"http://127.0.0.1:{free_port()}/v1"])
    assert res.exit_code == 1 and "cannot reach" in res.output


@pytest.fixture
def gateway(fake: Callable[..., str], tmp_path: Path) -> Iterator[str]:
    with gateway_process(gateway_yaml(fake(ttft_ms=20, gap_ms=5) + "/v1", tmp_path), tmp_path) as url:
        yield url


def _traffic(url: str, stop: threading.Event) -> None:
    while not stop.is_set():
        chat(url + "/v1", stream=True)


def test_top_once_json_against_the_gateway(gateway: str) -> None:
    chat(gateway + "/v1")
    stop = threading.Event()
    t = threading.Thread(target=_traffic, args=(gateway, stop))
    t.start()
    try:
        res = runner.invoke(app, ["monitor", "top", gateway, "--once", "--json", "--interval", "1.5"])
    finally:
        stop.set()
        t.join(10)
    assert res.exit_code == 0, res.output
    (v,) = json.loads(res.stdout)["endpoints"]
    assert v["kind"] == "gateway" and v["reachable"] and v["healthy"]
    assert v["requests_per_s"] > 1 and v["errors_per_s"] == 0 and v["tokens_out_per_s"] > 0
    # the gateway's TTFT histogram times the first byte of the reply (the fake sends its role chunk at once)
    assert 0 < v["ttft_p50_ms"] <= v["ttft_p99_ms"] < 1000
    assert 20 < v["e2e_p50_ms"] <= v["e2e_p99_ms"] < 1000  # 20 ms to the first token, then 4 tokens
    assert v["deployments"] == [
        {
            "route": "chat",
            "deployment": "d0",
            "healthy": True,
            "requests_per_s": pytest.approx(v["requests_per_s"], rel=0.5),
            "failures_per_s": 0.0,
        }
    ]
    for figure in ("itl_p50_ms", "kv_cache_usage", "requests_waiting"):
        assert v[figure] is None and v["unavailable"][figure]


def test_gateway_metrics_match_the_catalog(gateway: str) -> None:
    """Every family the gateway exposes has the catalog's type, labels and histogram buckets."""
    for stream in (False, True):
        assert chat(gateway + "/v1", stream=stream).status_code == 200
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(gateway + "/metrics", timeout=5).text
    seen = set()
    for fam in text_string_to_metric_families(text):
        m = cat.BY_NAME.get(fam.name)
        if m is None or m.source != "gateway":
            continue
        seen.add(fam.name)
        assert fam.type == m.kind, fam.name
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            assert s.name in m.wire_names(), s.name
            assert set(s.labels) - {"le"} <= set(m.labels), (s.name, s.labels)
        if m.kind == "histogram":
            les = {float(s.labels["le"]) for s in fam.samples if s.name.endswith("_bucket")}
            if les:
                assert les == {*map(float, m.buckets), math.inf}, fam.name
    assert {
        "llm_requests",
        "llm_request_duration_seconds",
        "llm_token_usage",
        "llmops_gateway_ttft_seconds",
    } <= seen


def test_gateway_in_front_of_a_429_upstream(fake: Callable[..., str], tmp_path: Path) -> None:
    up = fake(fault="status429", retry_after=30)
    with gateway_process(gateway_yaml(up + "/v1", tmp_path), tmp_path) as url:
        code, doc = diagnose_json(url, "-m", "chat", "--timeout", "10")
        assert code == 1
        msgs = " | ".join(f["message"] for f in doc["findings"])
        assert "upstream 429s from d0" in msgs, msgs
        s = scrape(url)
        assert s.kind() == "gateway"
