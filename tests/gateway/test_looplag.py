"""The event-loop lag monitor: a stall shows in the histogram, the gateway exposes it, the trace names causes."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from pathlib import Path

import httpx

from llmops.gateway.fastmetrics import Series
from llmops.gateway.looplag import LAG_BUCKETS, LagTrace, LoopLag
from tests.gateway.conftest import openai_section, run_gateway


def _hist():
    return Series("histogram", "lag", "lag", [], LAG_BUCKETS).labels()


def test_a_blocked_loop_is_measured_as_lag() -> None:
    hist = _hist()

    async def main() -> None:
        mon = LoopLag(hist, interval=0.005)
        mon.start()
        await asyncio.sleep(0.1)  # idle: the ticks run on time
        time.sleep(0.08)  # a synchronous stall on the loop
        await asyncio.sleep(0.03)
        await mon.close()
        ticks = sum(hist.counts)
        await asyncio.sleep(0.03)
        assert sum(hist.counts) == ticks  # closed: no more ticks

    asyncio.run(main())
    bounds = (*LAG_BUCKETS, float("inf"))
    late = sum(n for b, n in zip(bounds, hist.counts, strict=True) if b > 0.05)
    assert late == 1  # the stall, once (the timer re-arms from when it ran, not from when it was due)
    assert hist.sum >= 0.07
    assert sum(hist.counts) >= 10


def test_the_trace_puts_a_full_collection_beside_the_tick_it_delayed(tmp_path: Path) -> None:
    path = tmp_path / "lag.jsonl"
    trace = LagTrace(path)

    async def main() -> None:
        mon = LoopLag(_hist(), trace, interval=0.005)
        mon.start()
        await asyncio.sleep(0.02)
        junk = [[i] for i in range(300_000)]  # a collection with something to walk
        gc.collect(2)
        del junk
        trace.add("usage_batches")
        await asyncio.sleep(0.02)
        await mon.close()

    asyncio.run(main())
    assert trace._on_gc not in gc.callbacks  # the callback left with the monitor
    ticks = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(ticks) >= 4
    times = [t for t, _, _ in ticks]
    assert times == sorted(times)
    hit = [(lag, causes) for _, lag, causes in ticks if "gc2_s" in causes]
    assert len(hit) == 1
    lag, causes = hit[0]
    assert causes["gc2_s"] > 0 and lag >= causes["gc2_s"] * 0.5
    assert causes.get("usage_batches") == 1
    assert all("cpu_wait_s" in c for _, _, c in ticks)  # Linux: the loop thread's wait for a CPU


def _steal_s() -> float:
    """The hypervisor's steal from the CPUs this process may run on, read here independently."""
    cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)}
    fields = [line.split() for line in Path("/proc/stat").read_text().splitlines()]
    return sum(int(f[8]) for f in fields if f[0] in cpus) / os.sysconf("SC_CLK_TCK")


def test_the_trace_counts_the_hosts_steal_of_the_loops_cpus(tmp_path: Path) -> None:
    path = tmp_path / "lag.jsonl"
    trace = LagTrace(path)
    before = _steal_s()

    async def main() -> None:
        mon = LoopLag(_hist(), trace, interval=0.005)
        mon.start()
        await asyncio.sleep(0.05)
        await mon.close()

    asyncio.run(main())
    after = _steal_s()
    ticks = [json.loads(line) for line in path.read_text().splitlines()]
    assert ticks and all(c["steal_s"] >= 0 for _, _, c in ticks)
    # the ticks' steal adds up to the kernel's count over the same stretch (it moves in 10 ms steps)
    assert sum(c["steal_s"] for _, _, c in ticks) <= after - before + 1e-9


def test_the_gateway_exposes_loop_lag_and_traces_on_request(upstream, tmp_path: Path) -> None:
    up = upstream(tokens=2)
    trace = tmp_path / "trace.jsonl"
    with run_gateway(openai_section(up.v1), tmp_path, env={"LLMOPS_GATEWAY_LAG_TRACE": str(trace)}) as gw:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        assert httpx.post(gw.v1 + "/chat/completions", json=body, timeout=10).status_code == 200
        time.sleep(0.1)
        m = gw.metrics()
    count = m[("llmops_gateway_loop_lag_seconds_count", ())]
    assert count >= 5  # a tick every 10 ms since start-up
    assert m[("llmops_gateway_loop_lag_seconds_bucket", (("le", "+Inf"),))] == count
    assert ("llmops_gateway_loop_lag_seconds_bucket", (("le", "0.001"),)) in m
    ticks = [json.loads(line) for line in trace.read_text().splitlines()]  # written at shutdown
    causes: dict[str, float] = {}
    for _, _, c in ticks:
        for k, v in c.items():
            causes[k] = causes.get(k, 0) + v
    assert causes["requests"] == 1
    assert causes["upstream_connects"] == 1
    assert causes["metrics_render_s"] > 0


def test_after_startup_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    from llmops.gateway import server

    class Uvicorn:  # what _after_startup needs of uvicorn.Server
        started = True

        async def startup(self, sockets=None) -> None:
            pass

    uv, announced = Uvicorn(), []
    before = gc.get_threshold()
    try:
        server._after_startup(uv, announced.append, "http://127.0.0.1:1")
        asyncio.run(uv.startup())
        assert gc.get_threshold() == (server.GC_GEN0, *before[1:])
        assert gc.get_freeze_count() > 0
        assert announced == ["http://127.0.0.1:1"]
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
