"""`/v1/embeddings` against a real llama.cpp embedding server, and `/v1/responses` against a local server
that follows the Responses API's documented payloads, both through the gateway with the `openai` SDK."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import KEY, free_port, run_gateway, serve_app

# --- a Responses API server (the documented payloads: an object, or events ending with response.completed)

TEXT = ["Hello", " world"]


def _response(model: str, status: str, text: str | None) -> dict[str, Any]:
    output = []
    if text is not None:
        output = [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
    usage = None
    if status == "completed":
        usage = {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 7,
        }
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1765000000,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def _events(model: str) -> list[dict[str, Any]]:
    part = {"type": "output_text", "text": "", "annotations": []}
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    evs: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(model, "in_progress", None)},
        {"type": "response.in_progress", "response": _response(model, "in_progress", None)},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {
            "type": "response.content_part.added",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "part": part,
        },
    ]
    for t in TEXT:
        evs.append(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": t,
                "logprobs": [],
            }
        )
    full = "".join(TEXT)
    evs += [
        {
            "type": "response.output_text.done",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "text": full,
            "logprobs": [],
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _response(model, "completed", full)["output"][0],
        },
        {"type": "response.completed", "response": _response(model, "completed", full)},
    ]
    for i, e in enumerate(evs):
        e["sequence_number"] = i
    return evs


class ResponsesServer:
    """POST /v1/responses (plain or streamed) on a free loopback port, in a thread; records the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.port = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        if scope["path"] != "/v1/responses":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b'{"error":{"message":"not found"}}'})
            return
        req = json.loads(body)
        self.bodies.append(req)
        if not req.get("stream"):
            doc = json.dumps(_response(req["model"], "completed", "".join(TEXT))).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": doc})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for e in _events(req["model"]):
            data = f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})
            await asyncio.sleep(0.002)
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def responses_server() -> Iterator[ResponsesServer]:
    app = ResponsesServer()
    with serve_app(app) as port:
        app.port = port
        yield app


def test_responses_pass_through_plain_and_streamed_with_the_sdk(
    upstream, responses_server, tmp_path: Path
) -> None:
    import openai

    chat_only = upstream(tokens=2)  # an OpenAI-compatible server without /v1/responses (as llama.cpp)
    base = f"http://127.0.0.1:{responses_server.port}/v1"
    section = {
        "keys": [{"name": "ci", "key_env": "CI_KEY", "rpm": 100}],
        "routes": [
            {
                "name": "resp",
                "deployments": [
                    {"url": chat_only.v1, "model": "stub-model", "name": "llama"},
                    {
                        "url": base,
                        "model": "served-model",
                        "name": "vllm",
                        "responses": True,
                        "input_per_1m": 1000,
                    },
                ],
            },
            {"name": "llama", "deployments": [{"url": chat_only.v1, "model": "stub-model", "name": "l0"}]},
        ],
        "timeouts": {"first_byte_s": 5, "stall_s": 2, "total_s": 10},
    }
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=KEY, max_retries=0)
        raw = client.responses.with_raw_response.create(model="resp", input="Say hello.")
        assert raw.headers["x-llmops-deployment"] == "vllm"
        resp = raw.parse()
        assert resp.output_text == "Hello world" and resp.usage.output_tokens == 2
        assert responses_server.bodies[-1]["model"] == "served-model"

        kinds, text = [], ""
        for event in client.responses.create(model="resp", input="Say hello.", stream=True):
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
        assert text == "Hello world" and kinds[0] == "response.created" and kinds[-1] == "response.completed"

        with pytest.raises(openai.BadRequestError) as exc:
            client.responses.create(model="llama", input="Say hello.")
        assert "no deployment that serves the Responses API" in exc.value.message
        assert (
            exc.value.body["type"] == "invalid_request_error" and exc.value.body["code"] == "unsupported_api"
        )
        assert chat_only.stats()["requests"] == 0

        assert gw.sample("llm_requests_total", model="resp", status="200") == 2
        assert gw.sample("llm_token_usage_total", model="resp", type="output") == 4
        assert gw.sample("llm_requests_total", model="llama", status="400") == 1
    lines = [json.loads(x) for x in gw.usage_path.read_text().splitlines()]
    streamed = [x for x in lines if x["api"] == "responses" and x["stream"]]
    assert streamed and streamed[0]["input_tokens"] == 5 and streamed[0]["usage"] == "reported"
    assert streamed[0]["cost_usd"] == pytest.approx(5 * 1000 / 1e6)


# --- embeddings: llama-cpp-python's server with --embedding true on the shipped SmolLM2 GGUF


@pytest.fixture(scope="module")
def embedding_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp")
    port = free_port()
    log = (tmp_path_factory.mktemp("embed") / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_gguf),
            "--embedding",
            "true",
            "--model_alias",
            "smollm2",
            "--n_ctx",
            "512",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "llama.cpp server did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


@pytest.mark.slow
def test_embeddings_routed_retried_cached_limited_and_costed(embedding_server: str, tmp_path: Path) -> None:
    import openai

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: a connect error, retried elsewhere
    section = {
        "keys": [{"name": "ci", "key_env": "CI_KEY", "rpm": 4}],
        "routes": [
            {
                "name": "embed",
                "strategy": "weighted",
                "deployments": [
                    {"url": dead, "model": "smollm2", "name": "down", "weight": 1e6},
                    {"url": embedding_server, "model": "smollm2", "name": "smol", "input_per_1m": 100},
                ],
                "cache": {"exact": {"ttl": 60}},
            }
        ],
        "retries": {"attempts": 2, "backoff_s": 0.01},
        "timeouts": {"first_byte_s": 30, "total_s": 60},
    }
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=KEY, max_retries=0)
        raw = client.embeddings.with_raw_response.create(
            model="embed", input=["hello world", "good night"], encoding_format="float"
        )
        first = raw.parse()
        assert raw.headers["x-llmops-deployment"] == "smol" and raw.headers["x-llmops-cache"] == "miss"
        assert len(first.data) == 2 and first.data[0].embedding and first.usage.prompt_tokens > 0
        raw = client.embeddings.with_raw_response.create(
            model="embed", input=["hello world", "good night"], encoding_format="float"
        )
        assert (
            raw.headers["x-llmops-cache"] == "hit"
            and raw.parse().data[1].embedding == first.data[1].embedding
        )
        client.embeddings.create(model="embed", input="a third text", encoding_format="float")
        client.embeddings.create(model="embed", input="a fourth text", encoding_format="float")
        with pytest.raises(openai.RateLimitError):  # rpm: 4
            client.embeddings.create(model="embed", input="a fifth text", encoding_format="float")
        assert gw.sample("llmops_gateway_retries_total", route="embed") >= 1
        assert gw.sample("llm_token_usage_total", model="embed", type="input") >= first.usage.prompt_tokens
        assert gw.sample("llm_cost_dollars_total", model="embed") > 0
        assert gw.sample("llmops_gateway_cache_lookups_total", route="embed", result="hit") == 1
