"""OpenTelemetry: a streamed chat request's spans (stages, GenAI attributes) arrive over OTLP/HTTP, the
caller's trace is continued and the upstream gets a traceparent; a collector that is down costs counted
dropped spans, nothing else."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import KEY, free_port, run_gateway, serve_app

pytest.importorskip("opentelemetry.sdk")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


async def _body(receive: Any) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


class Receiver:
    """OTLP/HTTP trace intake: decodes each export with the OpenTelemetry protocol's own messages."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        req = ExportTraceServiceRequest()
        req.ParseFromString(await _body(receive))
        for rs in req.resource_spans:
            self.resources.append({a.key: a.value.string_value for a in rs.resource.attributes})
            for ss in rs.scope_spans:
                self.spans.extend(ss.spans)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf")],
            }
        )
        await send({"type": "http.response.body", "body": ExportTraceServiceResponse().SerializeToString()})


class ChatUpstream:
    """A streaming chat completions server that records the traceparent of each request."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        self.traceparents.append((headers.get(b"traceparent") or b"").decode() or None)
        req = json.loads(await _body(receive))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": req["model"]}
        chunks = [
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
                ],
            },
            {**base, "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
        ]
        for c in chunks:
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {json.dumps(c)}\n\n".encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


@pytest.fixture
def servers() -> Iterator[tuple[Receiver, int, ChatUpstream, int]]:
    receiver, upstream = Receiver(), ChatUpstream()
    with serve_app(receiver) as rport, serve_app(upstream) as uport:
        yield receiver, rport, upstream, uport


def _attrs(span: Any) -> dict[str, Any]:
    out = {}
    for a in span.attributes:
        v = a.value
        kind = v.WhichOneof("value")
        out[a.key] = (
            list(x.string_value for x in v.array_value.values) if kind == "array_value" else getattr(v, kind)
        )
    return out


def _stream_traced(upstream_port: int, otel_port: int, service: str, tmp_path: Path) -> None:
    """One streamed chat request, continuing the caller's trace, through a gateway whose spans go to the
    OTLP/HTTP receiver on `otel_port`; the gateway's shutdown flushes the last batch."""
    import openai

    section = {
        "keys": [{"name": "ci", "key_env": "CI_KEY"}],
        "routes": [
            {
                "name": "chat",
                "deployments": [
                    {"url": f"http://127.0.0.1:{upstream_port}/v1", "model": "up-model", "name": "d0"}
                ],
            }
        ],
        "otel": {"endpoint": f"http://127.0.0.1:{otel_port}", "service_name": service},
    }
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=KEY, max_retries=0)
        stream = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "a secret prompt"}],
            stream=True,
            extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"},
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hi there"


def test_streamed_request_spans_arrive_with_genai_attributes_and_traceparent(servers, tmp_path: Path) -> None:

    receiver, rport, upstream, uport = servers
    _stream_traced(uport, rport, "gw-test", tmp_path)
    # The gateway's shutdown flushed the last batch.
    spans = {s.name: s for s in receiver.spans}
    assert {"chat chat", "auth", "limits", "upstream d0", "relay"} <= set(spans), list(spans)
    assert all(s.trace_id.hex() == TRACE_ID for s in receiver.spans), "the caller's trace is continued"
    root = spans["chat chat"]
    assert root.parent_span_id.hex() == PARENT
    a = _attrs(root)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "chat"
    assert a["gen_ai.response.model"] == "up-model" and a["gen_ai.usage.input_tokens"] == 3
    assert a["gen_ai.usage.output_tokens"] == 2 and a["llmops.key"] == "ci" and a["llmops.deployment"] == "d0"
    assert a["http.response.status_code"] == 200 and a["llmops.retries"] == 0
    assert "a secret prompt" not in str(receiver.spans)
    try_span = spans["upstream d0"]
    assert try_span.parent_span_id == root.span_id
    assert upstream.traceparents == [f"00-{TRACE_ID}-{try_span.span_id.hex()}-01"]
    assert receiver.resources[0]["service.name"] == "gw-test"


def test_a_collector_that_is_down_costs_counted_dropped_spans(servers, tmp_path: Path) -> None:
    _, _, _, uport = servers
    dead = free_port()
    section = {
        "routes": [
            {
                "name": "chat",
                "deployments": [{"url": f"http://127.0.0.1:{uport}/v1", "model": "m", "name": "d0"}],
            }
        ],
    }
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{dead}"}
    with run_gateway(section, tmp_path, env) as gw:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        for _ in range(3):
            r = httpx.post(gw.v1 + "/chat/completions", json=body, timeout=10)
            assert r.status_code == 200 and r.text.rstrip().endswith("[DONE]")
        deadline = time.monotonic() + 15
        while gw.sample("llmops_gateway_spans_dropped_total") == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gw.sample("llmops_gateway_spans_dropped_total") >= 3 * 4  # request, auth, limits, try, relay


PHOENIX = Path(__file__).resolve().parents[2] / ".venv-phoenix" / "bin" / "phoenix"


@pytest.fixture
def phoenix(tmp_path: Path) -> Iterator[int]:
    """Arize Phoenix (`make phoenix-env`), a real OTLP receiver for LLM traces, on free loopback ports."""
    import os
    import signal
    import subprocess

    assert PHOENIX.exists(), f"{PHOENIX} is missing: `make install` (or `make phoenix-env`) installs it"
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(tmp_path / "phoenix"),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = (tmp_path / "phoenix.log").open("wb")
    proc = subprocess.Popen(
        [str(PHOENIX), "serve"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "phoenix.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Phoenix was not ready in 120 s"
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.slow
def test_a_streamed_requests_trace_arrives_in_arize_phoenix(phoenix: int, tmp_path: Path) -> None:
    """The same streamed request, exported to a real receiver and read back through its REST API."""

    upstream = ChatUpstream()
    with serve_app(upstream) as uport:
        _stream_traced(uport, phoenix, "gw-phoenix", tmp_path)
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(spans) < 5 and time.monotonic() < deadline:  # Phoenix stores exports asynchronously
        time.sleep(0.5)
        r = httpx.get(
            f"http://127.0.0.1:{phoenix}/v1/projects/default/spans", params={"limit": 100}, timeout=10
        )
        spans = r.json().get("data", []) if r.status_code == 200 else []
    by_name = {s["name"]: s for s in spans}
    assert {"chat chat", "auth", "limits", "upstream d0", "relay"} <= set(by_name), list(by_name)
    assert {s["context"]["trace_id"] for s in spans} == {TRACE_ID}
    root = by_name["chat chat"]
    assert root["parent_id"] == PARENT
    a = root["attributes"]
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "chat"
    assert a["gen_ai.response.model"] == "up-model"
    assert a["gen_ai.usage.input_tokens"] == 3 and a["gen_ai.usage.output_tokens"] == 2
    assert a["llmops.deployment"] == "d0" and a["llmops.key"] == "ci"
    assert by_name["upstream d0"]["parent_id"] == root["context"]["span_id"]
    assert upstream.traceparents == [f"00-{TRACE_ID}-{by_name['upstream d0']['context']['span_id']}-01"]
    assert "a secret prompt" not in json.dumps(spans)
