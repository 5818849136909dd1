"""Each upstream fault injected into a real local server, and what the client sees through the gateway."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.conftest import openai_section, run_gateway

MSG = [{"role": "user", "content": "hello"}]


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, timeout=20)


def test_500_is_retried_on_the_other_deployment(upstream, tmp_path: Path) -> None:
    bad, good = upstream(fault="status500"), upstream()
    section = openai_section(bad.v1, good.v1, strategy="weighted")
    section["routes"][0]["deployments"][0]["weight"] = 1e6  # tried first, nearly always
    with run_gateway(section, tmp_path) as gw:
        for _ in range(4):
            raw = client(gw).chat.completions.with_raw_response.create(
                model="chat", messages=MSG, max_tokens=4
            )
            assert raw.headers["x-llmops-deployment"] == "d1"
        assert (
            gw.sample(
                "llmops_gateway_deployment_failures_total", route="chat", deployment="d0", reason="status_5xx"
            )
            >= 1
        )
        assert gw.sample("llm_requests_total", model="chat", status="200") == 4


def test_429_honours_retry_after_then_passes_it_on(upstream, tmp_path: Path) -> None:
    limited = upstream(fault="status429", retry_after=0.3)
    with run_gateway(openai_section(limited.v1), tmp_path) as gw:
        t0 = time.monotonic()
        r = httpx.post(gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG}, timeout=20)
        elapsed = time.monotonic() - t0
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert elapsed >= 0.6, "two retries each waited the upstream's Retry-After"
        assert limited.stats()["requests"] == 3
        assert gw.sample("llmops_gateway_retries_total", route="chat") == 2


def test_connection_refused_goes_to_the_live_deployment(upstream, tmp_path: Path) -> None:
    dead, live = upstream(), upstream()
    dead.kill()
    with run_gateway(openai_section(dead.v1, live.v1), tmp_path) as gw:
        for _ in range(3):
            raw = client(gw).chat.completions.with_raw_response.create(
                model="chat", messages=MSG, max_tokens=4
            )
            assert raw.headers["x-llmops-deployment"] == "d1"


def test_server_killed_mid_stream_is_an_error_not_an_end(upstream, tmp_path: Path) -> None:
    up = upstream(ttft_ms=5, gap_ms=100, tokens=30)
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        stream = client(gw).chat.completions.create(model="chat", messages=MSG, stream=True)
        it = iter(stream)
        next(it)
        up.kill()
        with pytest.raises(openai.APIError, match=r"cut the stream|without its final event"):
            for _ in it:
                pass
        assert gw.sample("llm_requests_total", model="chat", status="502") == 1


@pytest.mark.parametrize(
    ("fault", "match", "reason"),
    [
        ("stall", "went silent", "stall"),
        ("no_done", "without its final event", "stream_cut"),
        ("close_mid", "cut the stream|without its final event", "stream_cut"),
    ],
)
def test_broken_streams_end_with_an_error_event(
    upstream, tmp_path: Path, fault: str, match: str, reason: str
) -> None:
    up = upstream(ttft_ms=5, gap_ms=5, tokens=8, fault=fault)
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        with pytest.raises(openai.APIError, match=match):
            for _ in client(gw).chat.completions.create(model="chat", messages=MSG, stream=True):
                pass
        assert (
            gw.sample(
                "llmops_gateway_deployment_failures_total", route="chat", deployment="d0", reason=reason
            )
            == 1
        )


def test_anthropic_client_gets_an_error_event_for_a_cut_stream(upstream, tmp_path: Path) -> None:
    import anthropic

    up = upstream(ttft_ms=5, gap_ms=5, tokens=8, fault="no_done")
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        c = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
        with (
            pytest.raises(anthropic.APIStatusError, match="without its final event"),
            c.messages.stream(model="chat", max_tokens=8, messages=MSG) as s,
        ):
            for _ in s.text_stream:
                pass


def test_silent_and_garbage_servers_are_skipped(upstream, tmp_path: Path) -> None:
    silent, garbage, good = upstream(fault="silent"), upstream(fault="garbage"), upstream()
    section = openai_section(
        silent.v1, garbage.v1, good.v1, timeouts={"first_byte_s": 0.5, "stall_s": 1, "total_s": 8}
    )
    with run_gateway(section, tmp_path) as gw:
        for stream in (True, False):
            r = httpx.post(
                gw.v1 + "/chat/completions",
                timeout=20,
                json={"model": "chat", "messages": MSG, "stream": stream, "max_tokens": 4},
            )
            assert r.status_code == 200
            assert r.headers["x-llmops-deployment"] == "d2"
            assert "tok " in r.text


def test_only_a_silent_server_gives_504(upstream, tmp_path: Path) -> None:
    silent = upstream(fault="silent")
    section = openai_section(
        silent.v1,
        timeouts={"first_byte_s": 0.3, "stall_s": 1, "total_s": 2},
        retries={"attempts": 1, "backoff_s": 0},
    )
    with run_gateway(section, tmp_path) as gw:
        r = httpx.post(
            gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG, "stream": True}, timeout=20
        )
        assert r.status_code == 504
        assert "in time" in r.json()["error"]["message"]


def test_breaker_cools_down_then_readmits(upstream, tmp_path: Path) -> None:
    flaky, steady = upstream(), upstream()
    section = openai_section(
        flaky.v1,
        steady.v1,
        strategy="weighted",
        breaker={"failures": 2, "cooldown_s": 2.5, "error_ratio": None},
    )
    section["routes"][0]["deployments"][0]["weight"] = 1e6  # d0 is tried first whenever it is admitted
    with run_gateway(section, tmp_path) as gw:
        flaky.fault("status500")
        for _ in range(6):
            client(gw).chat.completions.create(model="chat", messages=MSG, max_tokens=2)
        assert gw.sample("llmops_gateway_deployment_healthy", route="chat", deployment="d0") == 0
        seen = flaky.stats()["requests"]
        for _ in range(4):
            client(gw).chat.completions.create(model="chat", messages=MSG, max_tokens=2)
        assert flaky.stats()["requests"] == seen, "a cooled-down deployment gets no traffic"
        assert httpx.get(gw.url + "/health/ready").json()["ready"] is True
        flaky.fault("none")
        time.sleep(2.8)
        deployments = set()
        for _ in range(8):
            raw = client(gw).chat.completions.with_raw_response.create(
                model="chat", messages=MSG, max_tokens=2
            )
            deployments.add(raw.headers["x-llmops-deployment"])
        assert "d0" in deployments, "the recovered deployment is readmitted"
        assert gw.sample("llmops_gateway_deployment_healthy", route="chat", deployment="d0") == 1


def _wait_disconnect(up, before: int, within: float = 1.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if up.stats()["disconnects"] > before:
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"the upstream connection was still open {within} s after the client left")


def test_client_disconnect_closes_the_upstream_stream(upstream, tmp_path: Path) -> None:
    up = upstream(ttft_ms=5, gap_ms=100, tokens=100)
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        with httpx.stream(
            "POST",
            gw.v1 + "/chat/completions",
            timeout=10,
            json={"model": "chat", "messages": MSG, "stream": True},
        ) as r:
            chunks = r.iter_bytes()  # kept: a dropped iterator closes the response (a disconnect)
            next(chunks)
            time.sleep(0.3)
            before = up.stats()["disconnects"]
            assert up.stats()["running"] == 1
        _wait_disconnect(up, before)
        time.sleep(0.2)
        assert gw.sample("llm_requests_total", model="chat", status="499") == 1


def test_client_disconnect_cancels_a_waiting_non_streamed_call(upstream, tmp_path: Path) -> None:
    up = upstream(ttft_ms=3000)
    with run_gateway(openai_section(up.v1, timeouts={"total_s": 30}), tmp_path) as gw:
        before = up.stats()["disconnects"]
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG}, timeout=0.3)
        _wait_disconnect(up, before)
