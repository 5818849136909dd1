"""/metrics parsed with prometheus_client's parser and matched to what was sent; bad input gets the API's
own error shape and never hurts other requests; the Anthropic provider is translated both ways."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import openai_section, run_gateway

MSG = [{"role": "user", "content": "hello"}]


def test_metrics_are_valid_and_count_what_was_sent(upstream, tmp_path: Path) -> None:
    import openai

    up = upstream(tokens=4)
    section = openai_section(up.v1)
    section["routes"][0]["aliases"] = ["chat-alias"]
    section["routes"][0]["deployments"][0].update(input_per_1m=2.0, output_per_1m=10.0)
    with run_gateway(section, tmp_path) as gw:
        c = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
        for _ in range(3):
            c.chat.completions.create(model="chat", messages=MSG, max_tokens=4)
        for _ in c.chat.completions.create(model="chat-alias", messages=MSG, max_tokens=4, stream=True):
            pass
        httpx.post(gw.v1 + "/chat/completions", content=b"{nope", timeout=5)
        m = gw.metrics()
    assert m[("llm_requests_total", (("model", "chat"), ("status", "200")))] == 4
    assert m[("llm_requests_total", (("model", "-"), ("status", "400")))] == 1
    assert m[("llm_request_duration_seconds_count", (("model", "chat"),))] == 4
    assert m[("llm_token_usage_total", (("model", "chat"), ("type", "output")))] == 16
    inp = m[("llm_token_usage_total", (("model", "chat"), ("type", "input")))]
    assert inp > 0
    assert m[("llm_cost_dollars_total", (("model", "chat"),))] == pytest.approx((inp * 2 + 16 * 10) / 1e6)
    assert m[("llm_error_rate", (("model", "chat"),))] == 0
    assert m[("llmops_gateway_deployment_requests_total", (("deployment", "d0"), ("route", "chat")))] == 4
    assert m[("llmops_gateway_ttft_seconds_count", (("route", "chat"),))] == 4
    assert m[("llmops_gateway_overhead_seconds_count", (("route", "chat"),))] == 4
    assert m[("llmops_gateway_inflight_requests", (("route", "chat"),))] == 0
    buckets = sorted(
        float(dict(k[1])["le"])
        for k in m
        if k[0] == "llm_request_duration_seconds_bucket" and dict(k[1])["model"] == "chat"
    )
    assert buckets == [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, float("inf")]
    assert not any("_created" in k[0] for k in m)


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/chat/completions", b"{not json", 400, "not valid JSON"),
        ("/chat/completions", b"[1, 2]", 400, "JSON object"),
        (
            "/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}]}',
            400,
            "'model' is required",
        ),
        ("/chat/completions", b'{"model": "chat", "messages": []}', 400, "non-empty list"),
        (
            "/chat/completions",
            b'{"model": "caht", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "'chat'",
        ),
        (
            "/chat/completions",
            b'{"model": "chat", "messages": [{"role": "user"}], "stream": "yes"}',
            400,
            "'stream'",
        ),
        ("/completions", b'{"model": "chat"}', 400, "'prompt' is required"),
        (
            "/messages",
            b'{"model": "chat", "messages": [{"role": "user", "content": "x"}]}',
            400,
            "max_tokens",
        ),
        ("/messages", b"{not json", 400, "not valid JSON"),
    ],
)
def test_bad_input_gets_the_apis_error_shape(upstream, tmp_path: Path, path, body, status, needle) -> None:
    up = upstream()
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        r = httpx.post(gw.v1 + path, content=body, headers={"content-type": "application/json"}, timeout=5)
        assert r.status_code == status
        doc = r.json()
        if path == "/messages":
            assert doc["type"] == "error" and set(doc["error"]) == {"type", "message"}
            assert needle in doc["error"]["message"]
        else:
            assert set(doc["error"]) == {"message", "type", "param", "code"}
            assert needle in doc["error"]["message"]
        ok = httpx.post(gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG}, timeout=5)
        assert ok.status_code == 200, "a bad request affects only itself"


def test_body_over_the_limit_is_413(upstream, tmp_path: Path) -> None:
    up = upstream()
    with run_gateway(openai_section(up.v1, max_body_bytes=1000), tmp_path) as gw:
        big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 5000}]}
        r = httpx.post(gw.v1 + "/chat/completions", json=big, timeout=5)
        assert r.status_code == 413
        assert "limit of 1000 bytes" in r.json()["error"]["message"]
        assert httpx.get(gw.url + "/health").json() == {"status": "ok"}


def test_upstream_4xx_passes_through_without_retry(upstream, tmp_path: Path) -> None:
    up = upstream()
    with run_gateway(openai_section(up.v1), tmp_path) as gw:
        # a request the upstream refuses (400) is the client's error: passed on, not retried, no breaker
        r = httpx.post(
            gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG, "max_tokens": 0}, timeout=5
        )
        assert r.status_code == 400
        assert r.json()["error"]["message"] == "max_tokens must be at least 1"
        assert gw.sample("llmops_gateway_retries_total", route="chat") == 0
        assert gw.sample("llmops_gateway_deployment_healthy", route="chat", deployment="d0") == 1


def test_openai_client_in_front_of_the_anthropic_provider(upstream, tmp_path: Path) -> None:
    """The shipped anthropic provider (key from ANTHROPIC_API_KEY), its URL pointed at a local server."""
    import openai

    from llmops.profiles.loader import Catalog

    up = upstream(tokens=3)
    section = {
        "routes": [
            {
                "name": "claude",
                "deployments": [{"provider": "anthropic", "model": "claude-haiku-4-5", "url": up.base}],
            }
        ]
    }
    env = {"ANTHROPIC_API_KEY": "sk-ant-local"}
    with run_gateway(section, tmp_path, env, catalog=Catalog.discover()) as gw:
        c = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
        reply = c.chat.completions.create(
            model="claude",
            max_tokens=3,
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        )
        assert reply.choices[0].message.content == "tok tok tok "
        assert reply.usage.completion_tokens == 3
        sent = up.stats()["bodies"][-1]
        assert sent["system"] == "be brief" and sent["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]}
        ]
        chunks = list(
            c.chat.completions.create(
                model="claude",
                max_tokens=3,
                messages=MSG,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "tok tok tok "
        assert chunks[-1].usage.completion_tokens == 3
        cost = gw.sample("llm_cost_dollars_total", model="claude")
        assert cost > 0, "prices come from the provider profile"
    assert "sk-ant-local" not in gw.usage_path.read_text()
