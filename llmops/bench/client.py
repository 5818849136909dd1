"""A minimal HTTP/1.1 streaming client on raw asyncio protocols: timestamps taken the moment bytes arrive.

Why not httpx here: at hundreds of requests per second its per-request and per-chunk Python overhead is what
a benchmark would measure (see benchmarks/bench_client_overhead.py, which runs both). This client does the
least work possible on the event loop: one perf_counter() per socket read (on `new_event_loop()`'s loop,
one per wait for sockets), chunked decoding, and one regex search per server-sent event. Connections are
kept alive and the pool grows to whatever concurrency the run needs (no cap). HTTPS works through the standard ssl module; HTTP proxies are not supported.
"""

from __future__ import annotations

import asyncio
import selectors
import ssl as _ssl
import weakref
from collections.abc import Callable
from time import perf_counter
from urllib.parse import urlsplit

from llmops.bench.sse import Record, Scanner

_HEADERS, _CHUNKED, _LENGTH, _UNTIL_CLOSE = 0, 1, 2, 3


class _StampingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The loop's selector, noting when each wait for sockets returned.

    When the server writes to many streams at once (every request of a run's first wave gets its first
    token in the same millisecond), one wait reports all those sockets readable, and the loop then runs
    their callbacks one after another. A timestamp taken in each callback would make the last stream's
    bytes look late by the time spent parsing all the others (several ms for 256 streams); the moment
    the wait returned is when the bytes were known to be there. Only the read's first event is known
    to have been there then: what came in after the wait is stamped when its callback runs."""

    at = 0.0

    def select(self, timeout: float | None = None) -> list:
        events = super().select(timeout)
        self.at = perf_counter()
        return events


_STAMPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _StampingSelector] = weakref.WeakKeyDictionary()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop whose reads the client stamps with the moment the sockets were reported readable
    (a benchmark's loop: `asyncio.Runner(loop_factory=new_event_loop)`); on any other loop the client
    stamps each read when its callback runs."""
    selector = _StampingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _STAMPS[loop] = selector
    return loop


class _Conn(asyncio.Protocol):
    """One keep-alive connection; parses one streamed response at a time."""

    __slots__ = (
        "buf",
        "closed",
        "fut",
        "later",
        "mode",
        "rec",
        "remaining",
        "reusable",
        "sbuf",
        "scanner",
        "stamps",
        "transport",
    )

    def __init__(self, stamps: _StampingSelector | None = None) -> None:
        self.stamps = stamps
        self.later = 0.0  # when the current read's callback ran
        self.transport: asyncio.Transport | None = None
        self.fut: asyncio.Future[bool] | None = None
        self.rec: Record | None = None
        self.scanner: Scanner | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self, rec: Record, scanner: Scanner, fut: asyncio.Future[bool]) -> None:
        self.rec, self.scanner, self.fut = rec, scanner, fut
        self.buf = b""
        self.sbuf = b""
        self.mode = _HEADERS
        self.remaining = 0
        self.reusable = True
        if self.closed:
            # The server closed the connection before the request went out (a port that accepts and
            # closes at once): writing would go nowhere and the request would wait out its timeout.
            self._finish(rec, perf_counter(), "disconnected", "the server closed the connection at once")

    def data_received(self, data: bytes) -> None:
        self.later = perf_counter()
        # The wait's time is true of the bytes that made the socket readable: the read's first event.
        # Bytes that came in after the wait returned (before this callback read them) are stamped now.
        now = self.stamps.at if self.stamps is not None else self.later
        rec = self.rec
        if rec is None or self.fut is None or self.fut.done():
            return
        rec.got_bytes = True
        try:
            self._feed(rec, data, now)
        except (ValueError, IndexError) as exc:
            self._finish(rec, now, "protocol", f"unparseable response: {exc}")

    def _feed(self, rec: Record, data: bytes, now: float) -> None:
        if self.mode == _HEADERS:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._headers(rec, self.buf[:end])
            data, self.buf = self.buf[end + 4 :], b""
            if self.fut is None:
                return
        if self.mode == _CHUNKED:
            buf = self.buf + data if self.buf else data
            pos, n = 0, len(buf)
            out = []
            while True:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                size = int(buf[pos:i].split(b";", 1)[0], 16)
                if size == 0:
                    if self.sbuf or out:
                        self._body(rec, b"".join(out), now)
                    self._finish(rec, self.later)
                    return
                if i + 2 + size + 2 > n:
                    break
                out.append(buf[i + 2 : i + 2 + size])
                pos = i + 2 + size + 2
            self.buf = buf[pos:]
            if out:
                self._body(rec, b"".join(out) if len(out) > 1 else out[0], now)
        elif self.mode == _LENGTH:
            self.remaining -= len(data)
            self._body(rec, data, now)
            if self.remaining <= 0:
                self._finish(rec, self.later)
        else:
            self._body(rec, data, now)

    def _headers(self, rec: Record, head: bytes) -> None:
        rec.head = head
        lines = head.split(b"\r\n")
        rec.status = int(lines[0].split(b" ", 2)[1])
        chunked, length = False, None
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"content-length":
                length = int(v.strip())
            elif k == b"connection" and b"close" in v.lower():
                self.reusable = False
        if chunked:
            self.mode = _CHUNKED
        elif length is not None:
            self.mode, self.remaining = _LENGTH, length
        else:
            self.mode, self.reusable = _UNTIL_CLOSE, False
        if length == 0:
            self._finish(rec, perf_counter())

    def _body(self, rec: Record, data: bytes, now: float) -> None:
        if rec.status != 200:
            self.sbuf += data  # an error body: keep it for the message
            return
        sbuf = self.sbuf + data if self.sbuf else data
        if b"\r" in sbuf:
            sbuf = sbuf.replace(b"\r\n", b"\n")
        self.sbuf = self.scanner.feed(rec, sbuf, now, self.later) if self.scanner else b""

    def _finish(self, rec: Record, now: float, error: str | None = None, detail: str | None = None) -> None:
        rec.t_end = now
        if error is None and rec.status != 200:
            error, detail = f"http_{rec.status}", self.sbuf[:300].decode("utf-8", "replace").strip()
        elif error is None and rec.status == 200 and self.sbuf.strip() and self.scanner is not None:
            self.scanner.feed(rec, self.sbuf + b"\n\n", now)  # a last event without its blank line
        if error is not None:
            rec.error, rec.detail = error, detail
            self.reusable = False
        elif rec.error is None and not rec.content_times:
            rec.error, rec.detail = "empty", "the stream ended without any content"
        fut, self.fut, self.rec = self.fut, None, None
        if fut is not None and not fut.done():
            fut.set_result(self.reusable and error is None)

    def connection_lost(self, exc: Exception | None) -> None:
        rec = self.rec
        self.reusable = False
        self.closed = True
        if rec is None:
            return
        if self.mode == _UNTIL_CLOSE and rec.got_bytes and exc is None:
            self._finish(rec, perf_counter())
        else:
            self._finish(
                rec,
                perf_counter(),
                "disconnected",
                f"connection closed mid-response ({exc or 'by the server'})",
            )

    def timeout(self, seconds: float) -> None:
        if self.rec is not None:
            self._finish(self.rec, perf_counter(), "timeout", f"no complete answer within {seconds:g}s")
        if self.transport is not None:
            self.transport.abort()


class StreamingClient:
    """Sends pre-built HTTP requests and records when each streamed event arrived."""

    def __init__(self, base_url: str, *, timeout: float = 300.0) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.ssl: _ssl.SSLContext | None = _ssl_context() if u.scheme == "https" else None
        self.host_header = u.netloc.rsplit("@", 1)[-1]
        self.timeout = timeout
        self.idle: list[_Conn] = []
        self.opened = 0

    async def request(
        self,
        raw: bytes,
        scanner: Scanner,
        keep_text: bool = False,
        on_event: Callable[[bytes, float], None] | None = None,
    ) -> Record:
        """Send one request and wait for its whole response; `on_event` sees each event as it arrives.

        Cancelling the awaiting task aborts the connection, which is how a server learns to stop generating.
        """
        loop = asyncio.get_running_loop()
        for attempt in (0, 1):
            rec = Record(content_payloads=[] if keep_text else None, on_event=on_event)
            rec.t_send = perf_counter()
            conn = None
            while self.idle and conn is None:
                conn = self.idle.pop()
                if conn.closed:  # the server closed it while it was idle
                    conn = None
            reused = conn is not None
            if conn is None:
                try:
                    _, conn = await asyncio.wait_for(
                        loop.create_connection(self._protocol(loop), self.host, self.port, ssl=self.ssl),
                        self.timeout,
                    )
                except (OSError, TimeoutError) as exc:
                    rec.t_end = perf_counter()
                    rec.error, rec.detail = "connect", f"cannot connect to {self.host}:{self.port} ({exc})"
                    return rec
                self.opened += 1
            fut: asyncio.Future[bool] = loop.create_future()
            conn.start(rec, scanner, fut)
            assert conn.transport is not None
            if not fut.done():
                conn.transport.write(raw)
            handle = loop.call_later(self.timeout, conn.timeout, self.timeout)
            try:
                reusable = await fut
            except asyncio.CancelledError:
                conn.transport.abort()
                raise
            finally:
                handle.cancel()
            if reused and rec.error == "disconnected" and not rec.got_bytes and attempt == 0:
                continue  # the server closed an idle keep-alive connection: retry once on a fresh one
            if reusable:
                self.idle.append(conn)
            return rec
        return rec  # pragma: no cover - the loop always returns

    @staticmethod
    def _protocol(loop: asyncio.AbstractEventLoop) -> Callable[[], _Conn]:
        stamps = _STAMPS.get(loop)
        return (lambda: _Conn(stamps)) if stamps is not None else _Conn

    async def preopen(self, n: int) -> int:
        """Open keep-alive connections until n are idle (a run's concurrency), before its clock starts.

        Without this the first wave of a run sends n requests on n new connections at once: the last one
        leaves only after the client has set up all the others, and the server accepts them in a burst,
        which a TTFT figure would count. A connection that fails to open is left out (the request that
        needs it opens its own and reports the error). Returns how many were opened."""
        loop = asyncio.get_running_loop()

        async def one() -> None:
            _, conn = await asyncio.wait_for(
                loop.create_connection(self._protocol(loop), self.host, self.port, ssl=self.ssl), self.timeout
            )
            self.opened += 1
            self.idle.append(conn)

        results = await asyncio.gather(*(one() for _ in range(n - len(self.idle))), return_exceptions=True)
        return sum(r is None for r in results)

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.abort()
        self.idle.clear()


def _ssl_context() -> _ssl.SSLContext:
    try:
        import certifi

        return _ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return _ssl.create_default_context()


def build_request(
    client: StreamingClient, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """The full request bytes, built once before the run."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {client.host_header}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
