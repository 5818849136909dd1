"""The gateway's HTTP/1.1 client against small real servers on loopback that misbehave on purpose."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from llmops.gateway.http1 import Client, UpstreamClosed
from llmops.gateway.table import Deployment
from llmops.gateway.upstream import Upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
BODY = b'{"model":"m"}'


async def _request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One request's head and body, or None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


class Server:
    """`handler(reader, writer, n)` per connection (n counts connections from 1); `heads` keeps requests."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.lost = asyncio.Event()  # a connection ended (the client went away)

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer, self.connections)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                self.lost.set()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/v1/chat/completions"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def _ok(body: bytes = b"hello") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def _keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while await _request(reader) is not None:
        writer.write(_ok())
        await writer.drain()


def test_connections_are_reused_and_the_request_is_what_the_upstream_expects() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while (req := await _request(reader)) is not None:
            heads.append(req[0])
            assert req[1] == BODY
            writer.write(_ok())
            await writer.drain()

    async def run() -> None:
        async with Server(handler) as url:
            client = Client()
            prepared = client.prepare(
                url, {"content-type": "application/json", "accept-encoding": "identity"}
            )
            for _ in range(3):
                resp = await client.post(prepared, BODY)
                assert (resp.status, await resp.read()) == (200, b"hello")
                resp.release()
            client.close()

    asyncio.run(run())
    assert len(heads) == 3
    lines = heads[0].decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1" and lines[1].startswith("host: 127.0.0.1:")
    assert "accept-encoding: identity" in lines and f"content-length: {len(BODY)}" in lines


def test_one_connection_serves_sequential_requests() -> None:
    async def run() -> int:
        srv = Server(_keep_alive)
        async with srv as url:
            client = Client()
            prepared = client.prepare(url, {})
            for _ in range(5):
                resp = await client.post(prepared, BODY)
                await resp.read()
                resp.release()
            client.close()
        return srv.connections

    assert asyncio.run(run()) == 1


def test_a_reused_connection_the_upstream_dropped_is_retried_on_a_new_one() -> None:
    # The upstream closes an idle keep-alive connection just as the next request goes out on it (the
    # race every pooled client meets): the request never reached it, so it is sent again on a new one.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)
        writer.write(_ok(b"first" if n == 1 else b"again"))
        await writer.drain()
        if n == 1:
            await _request(reader)  # read the second request, answer nothing, close
            return
        await _keep_alive(reader, writer, n)

    async def run() -> tuple[bytes, bytes, int]:
        srv = Server(handler)
        async with srv as url:
            client = Client()
            prepared = client.prepare(url, {})
            first = await client.post(prepared, BODY)
            a = await first.read()
            first.release()
            second = await client.post(prepared, BODY)
            b = await second.read()
            second.release()
            client.close()
        return a, b, srv.connections

    assert asyncio.run(run()) == (b"first", b"again", 2)


def test_a_fresh_connection_closed_before_an_answer_is_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)

    async def run() -> None:
        async with Server(handler) as url:
            client = Client()
            with pytest.raises(UpstreamClosed, match="before any response"):
                await client.post(client.prepare(url, {}), BODY)
            client.close()

    asyncio.run(run())


def test_chunked_stream_arrives_piece_by_piece_and_a_late_end_keeps_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await _request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for piece in (b"data: 1\n\n", b"data: [DONE]\n\n"):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")  # the closing chunk comes on its own, later
            await writer.drain()

    async def run() -> tuple[list[bytes], int]:
        srv = Server(handler)
        async with srv as url:
            client = Client()
            prepared = client.prepare(url, {})
            pieces = []
            for _ in range(2):
                resp = await client.post(prepared, BODY)
                got = b""
                while b"[DONE]" not in got:
                    data = await resp.chunk()
                    pieces.append(data)
                    got += data
                resp.release()  # before the closing chunk: it lingers, then goes back to the pool
                await asyncio.sleep(0.1)
            client.close()
        return pieces, srv.connections

    pieces, connections = asyncio.run(run())
    assert pieces[:2] == [b"data: 1\n\n", b"data: [DONE]\n\n"] and connections == 1


def test_a_body_delimited_by_the_close_is_complete() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: a\n\ndata: b\n\n")
        await writer.drain()

    async def run() -> bytes:
        async with Server(handler) as url:
            client = Client()
            resp = await client.post(client.prepare(url, {}), BODY)
            body = await resp.read()
            assert resp.finished
            resp.release()
            client.close()
        return body

    assert asyncio.run(run()) == b"data: a\n\ndata: b\n\n"


def test_a_cut_body_and_bytes_that_are_not_http_are_errors() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)
        writer.write(b"<html>not http at all</html>\r\n\r\n")
        await writer.drain()

    async def run() -> None:
        client = Client()
        async with Server(cut) as url:
            resp = await client.post(client.prepare(url, {}), BODY)
            assert await resp.chunk() == b"only this"
            with pytest.raises(UpstreamClosed, match="before the response"):
                await resp.chunk()
            resp.close()
        async with Server(garbage) as url:
            with pytest.raises(UpstreamClosed, match="not HTTP"):
                await client.post(client.prepare(url, {}), BODY)
        client.close()

    asyncio.run(run())


def test_abandoning_a_response_closes_the_connection_at_once() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await reader.read()  # until the client goes away

    async def run() -> None:
        srv = Server(slow)
        async with srv as url:
            client = Client()
            resp = await client.post(client.prepare(url, {}), BODY)
            assert await resp.chunk() == b"first"
            resp.close()
            await asyncio.wait_for(srv.lost.wait(), 1)
            client.close()

    asyncio.run(run())


def test_a_large_body_pauses_reading_and_arrives_whole() -> None:
    big = bytes(range(256)) * 12_000  # about 3 MB: over the client's buffer limit

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big) + big)
        await writer.drain()

    async def run() -> bytes:
        async with Server(handler) as url:
            client = Client()
            resp = await client.post(client.prepare(url, {}), BODY)
            await asyncio.sleep(0.2)  # let the upstream fill the buffer while nobody reads
            body = await resp.read()
            resp.release()
            client.close()
        return body

    assert asyncio.run(run()) == big


def test_connection_refused_and_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def run() -> None:
        async with Server(_keep_alive, tls=server_ctx) as url:
            assert url.startswith("https://")
            client = Client(ssl_context=trusting)
            resp = await client.post(client.prepare(url, {}), BODY)
            assert (resp.status, await resp.read()) == (200, b"hello")
            resp.release()
            client.close()
            untrusting = Client()  # the system's trust store does not know this certificate
            with pytest.raises(ssl.SSLError):
                await untrusting.post(untrusting.prepare(url, {}), BODY)
            untrusting.close()
        closed = Client(connect_s=2)
        with pytest.raises(ConnectionRefusedError):
            await closed.post(closed.prepare(url, {}), BODY)  # the server is gone now

    asyncio.run(run())


def test_upstream_asks_for_identity_encoding_and_sends_the_key_only_upstream() -> None:
    up = Upstream(environ={"K": "sk-secret"})
    openai = up.headers(Deployment("d", "r", "http://x/v1", "m", api_key_env="K"))
    anthropic = up.headers(Deployment("a", "r", "http://x", "m", api="anthropic", api_key_env="K"))
    assert openai["accept-encoding"] == anthropic["accept-encoding"] == "identity"
    assert openai["authorization"] == "Bearer sk-secret" and anthropic["x-api-key"] == "sk-secret"
