"""Fixtures of the cache and guard tests: the gateway tests' real redis-server and fake upstreams, and an
echo upstream (a reply that repeats the prompt, so a test can make the "model" leak a key)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import free_port
from tests.gateway.conftest import redis_url, upstream  # noqa: F401  (shared fixtures)


def _echo_app():
    """An OpenAI-compatible upstream that answers with the last user message (shaped as the API documents)."""
    import json

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        req = json.loads(body or b"{}")
        text = next((m["content"] for m in reversed(req.get("messages", [])) if m["role"] == "user"), "")
        usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
        base = {"id": "chatcmpl-echo", "created": 0, "model": req.get("model", "echo")}
        if not req.get("stream"):
            doc = {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}  # fmt: skip
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(doc).encode()})
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [
            {
                **chunk,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
                ],
            },
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**chunk, "choices": [], "usage": usage},
        ]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": data})

    return app


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[str]:
    """The echo upstream on uvicorn in a thread, on a free loopback port; yields its /v1 base URL."""
    import asyncio
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_echo_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("echo upstream did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(10)
