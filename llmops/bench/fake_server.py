"""A calibration server that streams with a known time to first token and a known gap between tokens.

It speaks the streaming formats of OpenAI chat/completions and Anthropic Messages, so the bench client can be
measured against ground truth (tests, `benchmarks/bench_client_overhead.py`). It is raw asyncio with
pre-built bytes and absolute-time timers, so it stays far cheaper than the client it calibrates.

A request tagged with "user" (OpenAI) or metadata.user_id (Anthropic) has its timing logged: when it was
read and when each content chunk was written (time.perf_counter(), just before the write), served at
GET /timings, so a test can compare the client's timestamps with the server's own, request by request.

Run it: python -m llmops.bench.fake_server --port 8123 --ttft-ms 50 --gap-ms 10 --tokens 64

It also injects faults, for the gateway's tests (`--fault MODE`, or at run time `POST /fault` with
`{"mode": MODE, "retry_after": S}`): status429 (with Retry-After), status500, stall (first token, then
silence), no_done (stream ends without its final event), silent (never answers), garbage (200 with bytes
that are not a stream), close_mid (connection closed mid-stream). A request with `"stream": false` gets one
JSON body. `GET /stats` reports requests, streams cut by the client (`disconnects`) and the last bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

FAULTS = ("none", "status429", "status500", "stall", "no_done", "silent", "garbage", "close_mid")


@dataclass
class Spec:
    ttft_s: float = 0.05
    gap_s: float = 0.01
    tokens: int | None = None  # None: honour the request's max_tokens (default 16)
    die_after: int | None = None  # exit the process shortly after this many requests arrived
    stall_after: int | None = None  # requests after this many get no answer at all
    model: str = "fake-model"
    fault: str = "none"  # one of FAULTS; settable at run time with POST /fault
    retry_after: float = 1.0  # the Retry-After of status429


@dataclass
class Stats:
    requests: int = 0
    running: int = 0
    first_token_lateness: list[float] = field(default_factory=list)  # actual - scheduled first write (s)
    ttft_sum: float = 0.0
    ttft_count: int = 0
    disconnects: int = 0  # streams whose client went away before the end
    # tag -> [when the request was read, when each content chunk was written], time.perf_counter() taken
    # just before each write; only for requests tagged with "user" (OpenAI) or metadata.user_id (Anthropic)
    timings: dict[str, list[float]] = field(default_factory=dict)
    bodies: deque = field(default_factory=lambda: deque(maxlen=20))  # the last request bodies


def _chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class Frames:
    """Pre-built response bytes per (endpoint, model): built once, written many times."""

    def __init__(self, endpoint: str, model: str) -> None:
        m = json.dumps(model)
        if endpoint == "chat":
            head = (
                f'data: {{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":0,"model":{m},'
                '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
            )
            tok = (
                f'data: {{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":0,"model":{m},'
                '"choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}\n\n'
            )
            self.usage_tpl = (
                f'data: {{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":0,"model":{m},'
                '"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,'
                '"total_tokens":%d}}\n\n'
            )
            self.tail = b"data: [DONE]\n\n"
        elif endpoint == "completions":
            head = ""
            tok = (
                f'data: {{"id":"cmpl-fake","object":"text_completion","created":0,"model":{m},'
                '"choices":[{"index":0,"text":"tok ","logprobs":null,"finish_reason":null}]}\n\n'
            )
            self.usage_tpl = (
                f'data: {{"id":"cmpl-fake","object":"text_completion","created":0,"model":{m},'
                '"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,'
                '"total_tokens":%d}}\n\n'
            )
            self.tail = b"data: [DONE]\n\n"
        else:  # anthropic, exactly as the Messages streaming docs show
            head = (
                'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_fake",'
                '"type":"message",'
                f'"role":"assistant","content":[],"model":{m},"stop_reason":null,"stop_sequence":null,'
                '"usage":{"input_tokens":%d,"output_tokens":1}}}\n\n'
                'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
                '"content_block":{"type":"text","text":""}}\n\n'
                'event: ping\ndata: {"type": "ping"}\n\n'
            )
            tok = (
                'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                '"delta":{"type":"text_delta","text":"tok "}}\n\n'
            )
            self.usage_tpl = (
                'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
                'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
                '"max_tokens","stop_sequence":null},"usage":{"output_tokens":%d}}\n\n'
            )
            self.tail = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        self.endpoint = endpoint
        self.head = head
        self.tok = _chunk(tok.encode())
        self.headers = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )

    def head_bytes(self, prompt_tokens: int) -> bytes:
        if self.endpoint == "anthropic":
            return _chunk((self.head % prompt_tokens).encode())
        return _chunk(self.head.encode()) if self.head else b""

    def end_bytes(self, prompt_tokens: int, n: int, usage: bool) -> bytes:
        out = b""
        if self.endpoint == "anthropic":
            out += _chunk((self.usage_tpl % n).encode())
        elif usage:
            out += _chunk((self.usage_tpl % (prompt_tokens, n, prompt_tokens + n)).encode())
        return out + _chunk(self.tail) + b"0\r\n\r\n"


def _simple(status: str, body: bytes, ctype: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status.encode(),
        ctype,
        len(body),
        body,
    )


class _Conn(asyncio.Protocol):
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.streaming = False  # a response is being written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.streaming:
            self.streaming = False
            self.server.stats.disconnects += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            headers: dict[str, str] = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            self.server.handle(self, method, path.split("?")[0], headers, body)


class FakeServer:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.stats = Stats()
        self.frames: dict[tuple[str, str], Frames] = {}
        self.loop = asyncio.get_running_loop()

    def _frames(self, endpoint: str, model: str) -> Frames:
        key = (endpoint, model)
        if key not in self.frames:
            self.frames[key] = Frames(endpoint, model)
        return self.frames[key]

    def handle(self, conn: _Conn, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        t = conn.transport
        assert t is not None
        if method == "GET":
            if path.endswith("/models"):
                data = {
                    "object": "list",
                    "data": [{"id": self.spec.model, "object": "model", "owned_by": "fake"}],
                }
                t.write(_simple("200 OK", json.dumps(data).encode()))
            elif path == "/metrics":
                t.write(_simple("200 OK", self.metrics_text().encode(), b"text/plain; version=0.0.4"))
            elif path == "/timings":
                t.write(_simple("200 OK", json.dumps(self.stats.timings).encode()))
            elif path == "/stats":
                lat = self.stats.first_token_lateness
                data = {
                    "requests": self.stats.requests,
                    "median_first_token_lateness_ms": statistics.median(lat) * 1000 if lat else None,
                    "running": self.stats.running,
                    "disconnects": self.stats.disconnects,
                    "fault": self.spec.fault,
                    "bodies": list(self.stats.bodies),
                }
                t.write(_simple("200 OK", json.dumps(data).encode()))
            else:
                t.write(_simple("200 OK", b"{}"))
            return
        if path == "/fault":
            doc = json.loads(body or b"{}")
            if doc.get("mode", "none") not in FAULTS:
                t.write(_simple("400 Bad Request", b'{"error":{"message":"unknown fault"}}'))
                return
            self.spec.fault = doc.get("mode", "none")
            self.spec.retry_after = float(doc.get("retry_after", self.spec.retry_after))
            t.write(_simple("200 OK", json.dumps({"fault": self.spec.fault}).encode()))
            return
        endpoint = (
            "chat"
            if path.endswith("/chat/completions")
            else "completions"
            if path.endswith("/completions")
            else "anthropic"
            if path.endswith("/messages")
            else None
        )
        if endpoint is None:
            t.write(
                _simple("404 Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}')
            )
            return
        if endpoint == "anthropic" and not headers.get("x-api-key"):
            t.write(
                _simple(
                    "401 Unauthorized",
                    b'{"type":"error","error":{"type":"authentication_error",'
                    b'"message":"x-api-key header is required"}}',
                )
            )
            return
        req = json.loads(body)
        if isinstance(req.get("max_tokens"), int) and req["max_tokens"] < 1:  # as the real APIs refuse it
            msg = (
                b'{"error":{"message":"max_tokens must be at least 1","type":"invalid_request_error",'
                b'"param":"max_tokens","code":null}}'
            )
            t.write(_simple("400 Bad Request", msg))
            return
        tag = req.get("user") or (req.get("metadata") or {}).get("user_id")
        log = None
        if isinstance(tag, str):
            log = self.stats.timings[tag] = [time.perf_counter()]
        self.stats.requests += 1
        self.stats.bodies.append(req)
        n = self.stats.requests
        spec = self.spec
        if spec.die_after is not None and n == spec.die_after:
            self.loop.call_later(spec.ttft_s + 3 * spec.gap_s, os._exit, 1)
        if (spec.stall_after is not None and n > spec.stall_after) or spec.fault == "silent":
            return
        if spec.fault in ("status429", "status500"):
            self._fail(t, endpoint, spec.fault)
            return
        model = req.get("model") or spec.model
        if not req.get("stream"):
            conn.streaming = True
            self.loop.call_later(spec.ttft_s, self._whole, conn, endpoint, model, req)
            return
        if spec.fault == "garbage":
            t.write(_simple("200 OK", b"<html>this is not an event stream</html>\n\n", b"text/event-stream"))
            return
        frames = self._frames(endpoint, model)
        tokens = spec.tokens or int(req.get("max_tokens") or 16)
        prompt = req.get("prompt") or json.dumps(req.get("messages", ""))
        prompt_tokens = max(1, len(prompt) // 4)
        usage = bool((req.get("stream_options") or {}).get("include_usage"))
        end = frames.end_bytes(prompt_tokens, tokens, usage)
        start = frames.headers + frames.head_bytes(prompt_tokens)
        if spec.ttft_s <= 0 and spec.gap_s <= 0 and spec.fault == "none":
            if log is not None:
                log.append(time.perf_counter())
            t.write(start + frames.tok * tokens + end)
            self.stats.first_token_lateness.append(0.0)
            return
        t.write(start)
        conn.streaming = True
        self.stats.running += 1
        t0 = self.loop.time()
        self.loop.call_at(t0 + spec.ttft_s, self._emit, conn, frames.tok, end, tokens, 0, t0, log)

    def _fail(self, t: asyncio.Transport, endpoint: str, fault: str) -> None:
        if endpoint == "anthropic":
            kind = "rate_limit_error" if fault == "status429" else "api_error"
            body = json.dumps({"type": "error", "error": {"type": kind, "message": fault}}).encode()
        else:
            kind = "rate_limit_exceeded" if fault == "status429" else "server_error"
            body = json.dumps(
                {"error": {"message": fault, "type": kind, "param": None, "code": None}}
            ).encode()
        if fault == "status429":
            head = (
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: %s\r\n" % str(self.spec.retry_after).encode()
            )
        else:
            head = b"HTTP/1.1 500 Internal Server Error\r\n"
        t.write(head + b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    def _whole(self, conn: _Conn, endpoint: str, model: str, req: dict) -> None:
        """A non-streamed reply: one JSON body, shaped as each API documents it."""
        if conn.closed or conn.transport is None:
            return
        conn.streaming = False
        n = self.spec.tokens or int(req.get("max_tokens") or 16)
        prompt = req.get("prompt") or json.dumps(req.get("messages", ""))
        p = max(1, len(prompt) // 4)
        text = "tok " * n
        if endpoint == "anthropic":
            doc: dict = {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens",
                "stop_sequence": None,
                "usage": {"input_tokens": p, "output_tokens": n},
            }
        else:
            usage = {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n}
            if endpoint == "chat":
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length",
                    "logprobs": None,
                }
                doc = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            else:
                choice = {"index": 0, "text": text, "finish_reason": "length", "logprobs": None}
                doc = {
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "created": 0,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
        if self.spec.fault == "garbage":
            conn.transport.write(_simple("200 OK", b"<html>not json</html>", b"text/html"))
            return
        conn.transport.write(_simple("200 OK", json.dumps(doc).encode()))

    def _emit(
        self, conn: _Conn, tok: bytes, end: bytes, tokens: int, i: int, t0: float, log: list[float] | None
    ) -> None:
        spec = self.spec
        if conn.closed:
            self.stats.running -= 1
            return
        assert conn.transport is not None
        if log is not None:
            log.append(time.perf_counter())
        if i == 0:
            now = self.loop.time()
            self.stats.first_token_lateness.append(now - t0 - spec.ttft_s)
            self.stats.ttft_sum += now - t0
            self.stats.ttft_count += 1
            if spec.fault in ("stall", "close_mid"):
                conn.transport.write(tok)
                self.stats.running -= 1
                if spec.fault == "close_mid":
                    conn.streaming = False
                    conn.transport.abort()
                return
        if i == tokens - 1:
            if spec.fault == "no_done":
                end = b"0\r\n\r\n"
            conn.transport.write(tok + end)
            conn.streaming = False
            self.stats.running -= 1
            return
        conn.transport.write(tok)
        self.loop.call_at(
            t0 + spec.ttft_s + (i + 1) * spec.gap_s, self._emit, conn, tok, end, tokens, i + 1, t0, log
        )

    def metrics_text(self) -> str:
        s = self.stats
        return (
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="{self.spec.model}"}} {s.running}\n'
            f'vllm:num_requests_waiting{{model_name="{self.spec.model}"}} 0\n'
            f'vllm:kv_cache_usage_perc{{model_name="{self.spec.model}"}} {min(1.0, s.running / 100):.4f}\n'
            f'vllm:prefix_cache_queries_total{{model_name="{self.spec.model}"}} {s.requests * 100}\n'
            f'vllm:prefix_cache_hits_total{{model_name="{self.spec.model}"}} {s.requests * 25}\n'
            f'vllm:time_to_first_token_seconds_sum{{model_name="{self.spec.model}"}} {s.ttft_sum}\n'
            f'vllm:time_to_first_token_seconds_count{{model_name="{self.spec.model}"}} {s.ttft_count}\n'
        )


async def serve(
    spec: Spec, host: str = "127.0.0.1", port: int = 0, ready: asyncio.Future | None = None
) -> None:
    server = FakeServer(spec)
    srv = await asyncio.get_running_loop().create_server(lambda: _Conn(server), host, port, backlog=4096)
    actual = srv.sockets[0].getsockname()[1]
    print(f"listening http://{host}:{actual}", flush=True)
    if ready is not None:
        ready.set_result(actual)
    async with srv:
        await srv.serve_forever()


def spawn(ttft_ms: float = 50.0, gap_ms: float = 10.0, **options: object) -> tuple[subprocess.Popen, str]:
    """Start this server in its own process on a free loopback port; return it and its base URL.

    `options` are the other flags by name (tokens=16, die_after=3, ...); None leaves one unset.
    """
    argv = [
        sys.executable,
        "-m",
        "llmops.bench.fake_server",
        "--ttft-ms",
        str(ttft_ms),
        "--gap-ms",
        str(gap_ms),
    ]
    for name, value in options.items():
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening "):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, line.split(" ", 1)[1].strip()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--gap-ms", type=float, default=10.0)
    p.add_argument("--tokens", type=int, default=None)
    p.add_argument("--die-after", type=int, default=None)
    p.add_argument("--stall-after", type=int, default=None)
    p.add_argument("--model", default="fake-model")
    p.add_argument("--fault", choices=FAULTS, default="none")
    p.add_argument("--retry-after", type=float, default=1.0)
    a = p.parse_args(argv)
    spec = Spec(
        ttft_s=a.ttft_ms / 1000,
        gap_s=a.gap_ms / 1000,
        tokens=a.tokens,
        die_after=a.die_after,
        stall_after=a.stall_after,
        model=a.model,
        fault=a.fault,
        retry_after=a.retry_after,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(spec, port=a.port))


if __name__ == "__main__":
    main()
