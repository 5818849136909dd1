"""Where the bench client's clock starts and what it stamps: connections opened before the run, reads
stamped when the loop's wait for sockets returned (not after the other callbacks of a burst)."""

from __future__ import annotations

import asyncio
import socket
from time import perf_counter

from llmops.bench.client import _STAMPS, StreamingClient, _Conn, build_request, new_event_loop
from llmops.bench.endpoints import Endpoint
from llmops.bench.runner import LoadPlan, run_load
from llmops.bench.sse import ChatScanner, Record
from llmops.bench.workload import random_prompts


def _plan(base: str, concurrency: int, n: int) -> tuple[Endpoint, LoadPlan]:
    ep = Endpoint("chat", base + "/v1")
    addr = StreamingClient(ep.base_url)
    reqs = [
        build_request(addr, ep.path, ep.body(p, "fake-model", {}, True)) for p in random_prompts(n, 16, 4)
    ]
    return ep, LoadPlan(reqs, None, concurrency, n)


def test_preopen_opens_the_runs_connections_before_its_clock(fake_server) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)

    async def main() -> tuple[int, int, int, int]:
        client = StreamingClient(base + "/v1")
        first = await client.preopen(8)
        idle = len(client.idle)
        again = await client.preopen(8)  # already 8 idle: none more
        client.close()
        return first, idle, again, client.opened

    assert asyncio.run(main()) == (8, 8, 0, 8)

    ep, plan = _plan(base, 8, 32)
    out, _ = run_load(ep.base_url, ep.scanner(), plan, timeout=30)
    assert len(out.records) == 32 and all(r.ok for r in out.records)
    assert out.connections == 8  # the run used the connections opened before it, and no others
    cold, _ = run_load(ep.base_url, ep.scanner(), plan, timeout=30, preopen=False)
    assert all(r.ok for r in cold.records) and cold.connections == 8  # opened by the first wave instead


def test_preopen_against_a_closed_port_opens_nothing_and_does_not_raise() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused

    async def main() -> int:
        return await StreamingClient(f"http://127.0.0.1:{port}/v1", timeout=5).preopen(4)

    assert asyncio.run(main()) == 0


def test_reads_are_stamped_when_the_wait_for_sockets_returned() -> None:
    class Stamps:
        at = 123.5

    conn = _Conn(Stamps())  # type: ignore[arg-type]
    rec = Record()
    loop = asyncio.new_event_loop()
    fut = loop.create_future()
    conn.start(rec, ChatScanner(), fut)

    def chunk(body: bytes) -> bytes:
        return f"{len(body):x}\r\n".encode() + body + b"\r\n"

    role = b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
    tok = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    # the head and the role chunk made the socket readable; the token came in after the wait returned
    conn.data_received(head + chunk(role) + chunk(tok))
    t0 = perf_counter()
    assert rec.content_times[0] != 123.5 and t0 - 1 < rec.content_times[0] <= t0
    conn.data_received(chunk(tok))  # a read of one event: the one that made the socket readable
    assert rec.content_times[1] == 123.5
    loop.close()

    loop = new_event_loop()
    try:

        async def waited() -> tuple[float, float]:
            await asyncio.sleep(0.02)  # the loop waits in select() and wakes up for the timer
            return _STAMPS[loop].at, perf_counter()

        at, now = loop.run_until_complete(waited())
        assert 0 <= now - at < 0.5
        assert type(_Conn(_STAMPS[loop]).stamps).__name__ == "_StampingSelector"
        assert StreamingClient._protocol(loop)().stamps is _STAMPS[loop]
    finally:
        loop.close()
    plain = asyncio.new_event_loop()  # any other loop: each read stamped when its callback runs
    assert StreamingClient._protocol(plain) is _Conn
    plain.close()
