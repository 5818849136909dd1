"""Event-loop lag: how late a periodic callback runs, the stall every request in flight waited through.

A timer re-arms itself every INTERVAL_S; when it runs, how late it is (perf_counter against when it was
due) goes into the histogram `llmops_gateway_loop_lag_seconds`. One timer callback and one bisect per
10 ms: about 0.1 % of a core (benchmarks/bench_tail.py measures it). uvloop's timers count whole
milliseconds, so lag under 1 ms reads as "on time".

`LLMOPS_GATEWAY_LAG_TRACE=FILE` (a debugging aid, off by default) also records what ran on the loop or
beside it between two ticks: CPU time in garbage collections by generation (gc.callbacks), usage-log batches
written, /metrics renders, requests accepted, upstream connections opened, and the time the loop's thread
ran and waited for a CPU while runnable (another process had it: Linux schedstat), and the time the hypervisor
kept the loop's CPUs from running (/proc/stat "steal": on a virtual machine, the host's other tenants; the
kernel counts it in 10 ms units, and leaves it out of the thread's own run time). At shutdown it writes every
tick as JSON lines `[t, lag_s, {cause: amount}]`, so a lag spike can be read against its causes
(`python benchmarks/bench_tail.py --attribute` does that).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
from pathlib import Path
from time import perf_counter, thread_time
from typing import Any

INTERVAL_S = 0.01
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
TRACE_ENV = "LLMOPS_GATEWAY_LAG_TRACE"
MAX_TICKS = 200_000  # a trace keeps at most this many ticks (about 33 minutes at 10 ms)


class LagTrace:
    """What happened between two ticks of the monitor: seconds or counts per cause (debugging only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.since: dict[str, float] = {}  # causes since the last tick
        self.ticks: list[tuple[float, float, dict[str, float]]] = []
        self._gc_start = 0.0
        self._schedstat: int | None = None
        self._ran = self._waited = 0.0
        self._steal: Any = None  # llmops.steal.StealMeter of the CPUs the loop may run on
        self._stolen = 0.0

    def add(self, cause: str, amount: float = 1.0) -> None:
        self.since[cause] = self.since.get(cause, 0.0) + amount

    def tick(self, now: float, lag: float) -> None:
        stat = self._schedstat_s()
        if stat is not None:
            # on a CPU, and runnable but not running (another process had the CPU: the machine)
            self.since["on_cpu_s"] = stat[0] - self._ran
            self.since["cpu_wait_s"] = stat[1] - self._waited
            self._ran, self._waited = stat
        stolen = self._steal.stolen_s() if self._steal is not None else None
        if stolen is not None:
            self.since["steal_s"] = stolen - self._stolen
            self._stolen = stolen
        if len(self.ticks) < MAX_TICKS:
            self.ticks.append((now, lag, self.since))
        self.since = {}

    def _schedstat_s(self) -> tuple[float, float] | None:
        """Seconds the loop's thread has run, and waited for a CPU while runnable (Linux schedstat)."""
        if self._schedstat is None:
            return None
        ran, waited = os.pread(self._schedstat, 128, 0).split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # CPU time of the collecting thread: a collection preempted by another process is not longer
        if phase == "start":
            self._gc_start = thread_time()
        else:
            self.add(f"gc{info['generation']}_s", thread_time() - self._gc_start)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:  # the loop's thread: the main one
            self._schedstat = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
            self._ran, self._waited = self._schedstat_s() or (0.0, 0.0)
        except OSError:
            self._schedstat = None
        from llmops.steal import StealMeter

        affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere every CPU (and no /proc/stat)
        self._steal = StealMeter(affinity(0) if affinity is not None else None)

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None
        if self._steal is not None:
            self._steal.close()
            self._steal = None
        with self.path.open("w") as f:
            for t, lag, causes in self.ticks:
                f.write(json.dumps([round(t, 6), round(lag, 6), causes]) + "\n")


def trace_from_env(environ: dict[str, str] | None = None) -> LagTrace | None:
    path = (os.environ if environ is None else environ).get(TRACE_ENV)
    return LagTrace(Path(path)) if path else None


class LoopLag:
    """The monitor: `start()` on the running loop, `close()` to stop (and write the trace, if any)."""

    def __init__(self, hist: Any, trace: LagTrace | None = None, interval: float = INTERVAL_S) -> None:
        self.hist = hist  # a histogram child: .observe(seconds)
        self.trace = trace
        self.interval = interval
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.trace is not None:
            self.trace.start()
        self._due = perf_counter() + self.interval
        self._handle = self._loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        now = perf_counter()
        lag = now - self._due
        if lag < 0.0:
            lag = 0.0
        self.hist.observe(lag)
        if self.trace is not None:
            self.trace.tick(now, lag)
        self._due = now + self.interval
        self._handle = self._loop.call_later(self.interval, self._tick)  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.trace is not None:
            await asyncio.to_thread(self.trace.close)
