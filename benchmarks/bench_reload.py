"""Does a hot reload drop or fail a request? A steady open-loop load with a reload every second.

`llmops gateway` (as bench_gateway.py starts it: keys, limits, metrics and usage log on, pinned to CPU 0)
in front of the fake streaming server; a client sends streamed chat requests at a fixed rate (default 200/s)
for the whole run while another task rewrites llmops.yaml (a route added or removed, a deployment's
weight changed: a real change each time) and calls `POST /admin/reload` every second. A request counts
as failed unless it answered 200 and its stream ended with `data: [DONE]`. Prints one JSON document.

Usage: python benchmarks/bench_reload.py [--seconds 60] [--rate 200] [--reload-every 1]
(`--reload-every 0` is the same load without reloads: the baseline to compare latency with).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_gateway import KEY, cpu_s, rss_mb, start_gateway

from llmops.bench.fake_server import spawn


async def drive(base: str, cfg: Path, seconds: float, rate: float, every: float) -> dict:
    import aiohttp
    import yaml

    doc = yaml.safe_load(cfg.read_text())
    route = doc["gateway"]["routes"][0]
    variants = []
    for i in range(2):
        d = json.loads(json.dumps(doc))
        d["gateway"]["routes"][0]["deployments"][0]["weight"] = 1 + i
        if i:
            d["gateway"]["routes"].append({**route, "name": "extra"})
        variants.append(yaml.safe_dump(d))
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "max_tokens": 8,
    }
    headers = {"authorization": f"Bearer {KEY}"}
    results: list[tuple[bool, float]] = []
    reloads: list[tuple[int, float]] = []
    root = base.removesuffix("/v1")

    async def one(session: aiohttp.ClientSession) -> None:
        t0 = time.perf_counter()
        ok = False
        try:
            async with session.post(base + "/chat/completions", json=body, headers=headers) as r:
                text = await r.read()
                ok = r.status == 200 and text.rstrip().endswith(b"data: [DONE]")
        except aiohttp.ClientError:
            ok = False
        results.append((ok, time.perf_counter() - t0))

    async def reloader(session: aiohttp.ClientSession, stop: float) -> None:
        i = 0
        while every > 0 and time.perf_counter() + every < stop:
            await asyncio.sleep(every)
            i += 1
            cfg.write_text(variants[i % 2])
            t0 = time.perf_counter()
            async with session.post(root + "/admin/reload", json={}) as r:
                await r.read()
                reloads.append((r.status, time.perf_counter() - t0))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        start = time.perf_counter()
        stop = start + seconds
        rtask = asyncio.create_task(reloader(session, stop))
        tasks = set()
        n = 0
        while True:
            due = start + n / rate
            now = time.perf_counter()
            if due >= stop:
                break
            if due > now:
                await asyncio.sleep(due - now)
            t = asyncio.create_task(one(session))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            n += 1
        await rtask
        if tasks:
            await asyncio.gather(*tasks)
    lat = sorted(x[1] * 1000 for x in results)
    return {
        "requests": len(results),
        "failed": sum(1 for ok, _ in results if not ok),
        "offered_rate_per_s": rate,
        "seconds": seconds,
        "reload_every_s": every,
        "reloads": len(reloads),
        "reloads_ok": sum(1 for s, _ in reloads if s == 200),
        "reload_call_ms_median": round(statistics.median(x[1] * 1000 for x in reloads), 1)
        if reloads
        else None,
        "reload_call_ms_max": round(max(x[1] * 1000 for x in reloads), 1) if reloads else None,
        "latency_ms_median": round(statistics.median(lat), 2) if lat else None,
        "latency_ms_p99": round(lat[int(len(lat) * 0.99) - 1], 2) if lat else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument(
        "--reload-every", type=float, default=1.0, help="seconds between reloads (0: none, a baseline)"
    )
    args = ap.parse_args()
    fake, fake_base = spawn(20, 2, tokens=16)
    with tempfile.TemporaryDirectory() as tmp:
        gw, base = start_gateway(fake_base + "/v1", Path(tmp))
        try:
            cpu0 = cpu_s(gw.pid)
            doc = asyncio.run(
                drive(base, Path(tmp) / "llmops.yaml", args.seconds, args.rate, args.reload_every)
            )
            doc["gateway_cpu_s"] = round(cpu_s(gw.pid) - cpu0, 2)
            doc["gateway_rss_mb_after"] = round(rss_mb(gw.pid), 1)
            import httpx

            metrics = httpx.get(base.removesuffix("/v1") + "/metrics", timeout=5).text
            doc["metrics"] = [
                line for line in metrics.splitlines() if line.startswith("llmops_gateway_config_")
            ]
        finally:
            gw.terminate()
            gw.wait(30)
            fake.terminate()
            fake.wait(10)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
