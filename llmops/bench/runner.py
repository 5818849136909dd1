"""Drive prepared requests at a target on one asyncio loop: scheduled arrivals, a concurrency cap, a deadline.

Everything expensive (prompt building, tokenizing, JSON encoding) happened before; everything expensive
after (JSON decoding of usage, token counting) happens after. The loop only sends, stamps and classifies.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter

from llmops.bench.client import StreamingClient, new_event_loop
from llmops.bench.sse import Record, Scanner
from llmops.progress import NullProgress, ProgressReporter


@dataclass
class LoadPlan:
    requests: Sequence[bytes]  # pre-built HTTP requests, cycled when the run needs more than there are
    offsets: (
        Sequence[float] | None
    )  # scheduled arrival (s from start) of each request; None = as fast as allowed
    concurrency: int | None  # cap on requests in flight; None = no cap
    count: int | None  # how many requests to send (None: until the deadline)
    duration: float | None = None  # stop sending after this many seconds
    keep_text: bool = False  # keep content bytes for counting tokens after the run (server sends no usage)


@dataclass
class LoadOutcome:
    records: list[Record]
    started: float  # perf_counter at the start
    duration: float  # start to the last request's end
    connections: int


async def drive(
    client: StreamingClient, scanner: Scanner, plan: LoadPlan, progress: ProgressReporter | None = None
) -> LoadOutcome:
    loop = asyncio.get_running_loop()
    progress = progress or NullProgress()
    sem = asyncio.Semaphore(plan.concurrency) if plan.concurrency else None
    records: list[Record] = []
    tasks: set[asyncio.Task] = set()
    counters = {"sent": 0, "done": 0, "errors": 0}
    total = (
        plan.count if plan.count is not None else (len(plan.offsets) if plan.offsets is not None else None)
    )
    start = perf_counter()
    deadline = start + plan.duration if plan.duration else None

    async def one(raw: bytes, idx: int, due: float) -> None:
        try:
            rec = await client.request(raw, scanner, plan.keep_text)
        finally:
            if sem is not None:
                sem.release()
        rec.index, rec.lag = idx, max(0.0, rec.t_send - due)
        records.append(rec)
        counters["done"] += 1
        if rec.error is not None:
            counters["errors"] += 1

    last = {"t": start, "done": 0}

    def tick() -> None:
        now = perf_counter()
        delta = counters["done"] - last["done"]
        rate = delta / max(now - last["t"], 1e-9)
        last.update(t=now, done=counters["done"])
        progress.update(
            advance=delta,
            done=counters["done"],
            in_flight=counters["sent"] - counters["done"],
            errors=counters["errors"],
            rate=f"{rate:.1f}/s",
        )
        handle[0] = loop.call_later(0.5, tick)

    progress.start(total, "bench")
    handle = [loop.call_later(0.5, tick)]
    try:
        n = len(plan.requests)
        for k in itertools.count():
            if plan.count is not None and k >= plan.count:
                break
            if plan.offsets is not None:
                if k >= len(plan.offsets):
                    break
                due = start + plan.offsets[k]
                delay = due - perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if sem is not None:
                await sem.acquire()
            if plan.offsets is None:
                due = perf_counter()  # no schedule: lag is only the client's own delay in sending
            if deadline is not None and perf_counter() >= deadline:
                if sem is not None:
                    sem.release()
                break
            counters["sent"] += 1
            task = loop.create_task(one(plan.requests[k % n], k % n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        handle[0].cancel()
        for t in tasks:
            t.cancel()
        progress.update(
            advance=counters["done"] - last["done"],
            done=counters["done"],
            in_flight=0,
            errors=counters["errors"],
            rate="-",
        )
        progress.finish()
        client.close()
    end = max((r.t_end for r in records), default=perf_counter())
    return LoadOutcome(
        records=records, started=start, duration=max(end - start, 1e-9), connections=client.opened
    )


def run_load(
    base_url: str,
    scanner: Scanner,
    plan: LoadPlan,
    *,
    timeout: float,
    progress: ProgressReporter | None = None,
    warmup: Sequence[bytes] = (),
    preopen: bool = True,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = new_event_loop,
) -> tuple[LoadOutcome, list[Record]]:
    """Run warmup requests one by one, then the plan; returns the measured outcome and the warmup records.

    With a concurrency cap, that many connections are opened before the clock starts (`preopen`), so
    the first wave's TTFT is not its own connection burst; on `new_event_loop`'s loop, reads are stamped
    when the wait for sockets returned (benchmarks/bench_client_overhead.py --ab compares both)."""

    async def main() -> tuple[LoadOutcome, list[Record]]:
        warm: list[Record] = []
        if warmup:
            wclient = StreamingClient(base_url, timeout=timeout)
            for raw in warmup:
                warm.append(await wclient.request(raw, scanner, keep_text=True))
            wclient.close()
            if all(r.error is not None for r in warm):
                return LoadOutcome([], perf_counter(), 1e-9, 0), warm
        client = StreamingClient(base_url, timeout=timeout)
        if preopen and plan.concurrency:
            await client.preopen(min(plan.concurrency, plan.count or plan.concurrency))
        return await drive(client, scanner, plan, progress), warm

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())
