"""The gateway's upstream caller (aiohttp, pooled) against small real servers on loopback."""

from __future__ import annotations

import asyncio

import pytest

from llmops.gateway.table import Deployment
from llmops.gateway.upstream import Upstream, UpstreamFailure, UpstreamRefusal

BODY = b'{"model":"m"}'


async def _head_and_body(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return head


def _dep(port: int, api_key_env: str | None = None) -> Deployment:
    return Deployment("d", "r", f"http://127.0.0.1:{port}/v1", "m", api_key_env=api_key_env)


def test_abandoning_a_stream_closes_the_upstream_connection_at_once() -> None:
    """A client that goes away must free the engine's slot: the connection is dropped, not pooled."""
    lost = asyncio.Event()
    heads: list[bytes] = []

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await _head_and_body(reader))
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await reader.read()  # until the gateway goes away
        lost.set()

    async def run() -> None:
        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = Upstream(environ={"K": "sk-secret"})
        await up.start()
        try:
            opened = await up.open(_dep(port, "K"), "/chat/completions", BODY)
            assert await opened.response.content.readany() == b"first"
            opened.close()
            await asyncio.wait_for(lost.wait(), 1)
        finally:
            await up.close()
            server.close()

    asyncio.run(run())
    head = heads[0].lower()
    assert b"accept-encoding: identity" in head and b"authorization: bearer sk-secret" in head


def test_refused_connection_is_a_retryable_connect_failure_and_4xx_is_a_refusal() -> None:
    async def bad_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head_and_body(reader)
        body = b'{"error": {"message": "context too long"}}'
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(body), body))  # fmt: skip
        await writer.drain()
        writer.close()  # so the server's wait_closed() below does not wait on a pooled connection

    async def run() -> None:
        server = await asyncio.start_server(bad_request, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = Upstream(environ={})
        await up.start()
        try:
            with pytest.raises(UpstreamRefusal) as refusal:
                await up.open(_dep(port), "/chat/completions", BODY)
            assert refusal.value.status == 400 and b"context too long" in refusal.value.body
            server.close()
            await server.wait_closed()
            with pytest.raises(UpstreamFailure) as failure:
                await up.open(_dep(port), "/chat/completions", BODY)
            assert failure.value.reason == "connect" and failure.value.retryable
        finally:
            await up.close()

    asyncio.run(run())


def test_headers_name_identity_encoding_and_carry_the_key_only_upstream() -> None:
    up = Upstream(environ={"K": "sk-secret"})
    openai = up.headers(Deployment("d", "r", "http://x/v1", "m", api_key_env="K"))
    anthropic = up.headers(Deployment("a", "r", "http://x", "m", api="anthropic", api_key_env="K"))
    assert openai["accept-encoding"] == anthropic["accept-encoding"] == "identity"
    assert openai["authorization"] == "Bearer sk-secret" and anthropic["x-api-key"] == "sk-secret"
