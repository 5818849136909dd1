"""Streams: time to first token is the first chunk with content; usage is counted even when the client did
not ask for it (the gateway asks, then hides the extra chunk) and estimated when the upstream gives none."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import openai_section, run_gateway

MSG = [{"role": "user", "content": "Say hi."}]


def _stream(url: str, body: dict) -> list[dict]:
    """The client's view: every data event's JSON (the [DONE] marker checked and left out)."""
    events = []
    with httpx.stream("POST", url + "/chat/completions", json={**body, "stream": True}, timeout=60) as r:
        assert r.status_code == 200
        text = r.read().decode()
    blocks = [b for b in text.split("\n\n") if b.strip() and not b.startswith(":")]  # no comments
    assert blocks[-1] == "data: [DONE]"
    for b in blocks[:-1]:
        assert b.startswith("data: ")
        events.append(json.loads(b[6:]))
    return events


def _content_chunks(events: list[dict]) -> int:
    return sum(bool(e["choices"] and e["choices"][0]["delta"].get("content")) for e in events)


def _log(gw) -> list[dict]:
    return [json.loads(line) for line in gw.usage_path.read_text().splitlines()]


def test_ttft_is_the_first_chunk_with_content(upstream, tmp_path: Path) -> None:
    # The fake server sends its role-only chunk with the headers at once and the first token 300 ms later.
    up = upstream(ttft_ms=300, gap_ms=1, tokens=3)
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        _stream(gw.v1, {"model": "chat", "messages": MSG, "max_tokens": 3})
        m = gw.metrics()
    key = (("route", "chat"),)
    assert m[("llmops_gateway_ttft_seconds_count", key)] == 1
    assert 0.29 <= m[("llmops_gateway_ttft_seconds_sum", key)] < 2
    assert m[("llmops_gateway_ttft_seconds_bucket", (("le", "0.25"), ("route", "chat")))] == 0
    assert _log(gw)[-1]["ttft_ms"] >= 290


def test_usage_is_asked_for_counted_and_hidden_unless_the_client_asked(upstream, tmp_path: Path) -> None:
    up = upstream(tokens=4)
    section = openai_section(up.v1)
    section["routes"][0]["deployments"][0].update(input_per_1m=2.0, output_per_1m=10.0)
    with run_gateway(section, tmp_path) as gw:
        plain = _stream(gw.v1, {"model": "chat", "messages": MSG, "max_tokens": 4})
        assert up.stats()["bodies"][-1]["stream_options"] == {"include_usage": True}  # asked upstream
        assert all("usage" not in e or e["usage"] is None for e in plain)  # ... and hidden from the client
        assert _content_chunks(plain) == 4
        asked = _stream(
            gw.v1,
            {"model": "chat", "messages": MSG, "max_tokens": 4, "stream_options": {"include_usage": True}},
        )
        assert asked[-1]["choices"] == [] and asked[-1]["usage"]["completion_tokens"] == 4
        m = gw.metrics()
    assert m[("llm_token_usage_total", (("model", "chat"), ("type", "output")))] == 8
    inp = m[("llm_token_usage_total", (("model", "chat"), ("type", "input")))]
    assert inp > 0 and m[("llm_cost_dollars_total", (("model", "chat"),))] == pytest.approx(
        (inp * 2 + 8 * 10) / 1e6
    )
    lines = _log(gw)
    assert [(r["usage"], r["output_tokens"]) for r in lines] == [("reported", 4), ("reported", 4)]


@pytest.mark.slow
def test_llama_cpp_streams_without_usage_are_estimated(smollm2_server: str, tmp_path: Path) -> None:
    # llama-cpp-python's server ignores stream_options and sends no usage in streams: the gateway counts
    # the content chunks as output tokens, estimates the prompt, prices both, and says so in the log.
    section = {
        "routes": [
            {
                "name": "smol",
                "deployments": [
                    {"url": smollm2_server, "model": "smollm2", "input_per_1m": 1.0, "output_per_1m": 2.0}
                ],
                "timeouts": {"first_byte_s": 60, "stall_s": 30, "total_s": 120},
            }
        ]
    }
    with run_gateway(section, tmp_path) as gw:
        events = _stream(gw.v1, {"model": "smol", "messages": MSG, "max_tokens": 8, "temperature": 0})
        m = gw.metrics()
    chunks = _content_chunks(events)
    assert chunks > 0 and all(not e.get("usage") for e in events)
    assert m[("llm_token_usage_total", (("model", "smol"), ("type", "output")))] == chunks
    inp = m[("llm_token_usage_total", (("model", "smol"), ("type", "input")))]
    assert inp > 0
    assert m[("llm_cost_dollars_total", (("model", "smol"),))] == pytest.approx((inp * 1 + chunks * 2) / 1e6)
    assert m[("llmops_gateway_ttft_seconds_count", (("route", "smol"),))] == 1
    line = _log(gw)[-1]
    assert line["usage"] == "estimated" and line["output_tokens"] == chunks and line["cost_usd"] > 0
    assert line["ttft_ms"] > 0
