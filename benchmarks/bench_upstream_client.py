"""Report only (issue 23): client CPU per streamed request, aiohttp as the gateway's upstream client uses it
(llmops/gateway/upstream.py: no cookie jar, no decompression, headers built once) against pyreqwest, a
maintained client with a compiled (Rust) core, both reading the same llmops.bench.fake_server stream of 32
tokens on uvloop; process CPU (pyreqwest's own runtime threads included) per request, alternating rounds.

pyreqwest is not a dependency: `pip install pyreqwest` first. Usage:
  python benchmarks/bench_upstream_client.py            # the whole stream in one write (one or two reads)
  GAP_MS=0.5 N1=200 N16=800 python benchmarks/bench_upstream_client.py   # 32 separate reads per stream
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmops.bench.fake_server import spawn

BODY = json.dumps(
    {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
).encode()
HDR = {"content-type": "application/json", "accept": "*/*", "accept-encoding": "identity", "user-agent": "x"}


async def timed(one, n, c):
    """Warm the pool with `c` streams, then `n` streams `c` at a time: (wall seconds, process CPU seconds)."""
    await asyncio.gather(*(one() for _ in range(c)))
    it = iter(range(n))

    async def worker():
        for _ in it:
            await one()

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(c)))
    return time.perf_counter() - t0, time.process_time() - c0


async def aio(url, n, c):
    import aiohttp
    from yarl import URL

    conn = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
    s = aiohttp.ClientSession(connector=conn, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    u = URL(url)
    from multidict import CIMultiDict

    h = CIMultiDict(HDR)

    async def one():
        r = await s.post(u, data=BODY, headers=h)
        k = 0
        async for _chunk in r.content.iter_any():
            k += 1
        r.release()
        return k

    try:
        return await timed(one, n, c)
    finally:
        await s.close()


async def rq(url, n, c):
    from pyreqwest.client import ClientBuilder

    cl = ClientBuilder().http1_only().default_headers(HDR).build()

    async def one():
        async with cl.post(url).body_bytes(BODY).build_streamed() as r:
            k = 0
            while await r.body_reader.read_chunk() is not None:
                k += 1
        return k

    try:
        return await timed(one, n, c)
    finally:
        await cl.close()


def main() -> None:
    proc, base = spawn(0, float(os.environ.get("GAP_MS", "0")), tokens=32)
    url = base + "/v1/chat/completions"
    try:
        for rnd in range(2):
            for name, fn in (
                (("aiohttp", aio), ("pyreqwest", rq))
                if rnd % 2 == 0
                else (("pyreqwest", rq), ("aiohttp", aio))
            ):
                for c in (1, 16):
                    n = int(os.environ.get("N1", "1000")) if c == 1 else int(os.environ.get("N16", "2000"))
                    dt, dc = uvloop.run(fn(url, n, c))
                    print(
                        f"{name:<10} c={c:<3} {n / dt:7.0f} streams/s  client CPU {dc / n * 1e6:6.0f} us per 32-chunk stream  load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
