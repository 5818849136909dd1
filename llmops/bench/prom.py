"""The server's own view from its Prometheus /metrics (vLLM names), sampled before, during and after a run."""

from __future__ import annotations

import threading
from collections import defaultdict

from llmops.profiles.schema import StrictModel

# vLLM renamed some metrics across versions; each figure lists the names to try, newest first.
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
RUNNING = ("vllm:num_requests_running",)
WAITING = ("vllm:num_requests_waiting",)
PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
TTFT_SUM = ("vllm:time_to_first_token_seconds_sum",)
TTFT_COUNT = ("vllm:time_to_first_token_seconds_count",)
SPEC_DRAFT_TOKENS = ("vllm:spec_decode_num_draft_tokens_total",)  # only with speculative decoding on
SPEC_ACCEPTED_TOKENS = ("vllm:spec_decode_num_accepted_tokens_total",)


class ServerMetrics(StrictModel):
    """What the server itself reported over the run (None where it exposes no such metric)."""

    source: str
    samples: int
    kv_cache_usage_peak: float | None = None
    running_peak: float | None = None
    waiting_peak: float | None = None
    prefix_cache_hit_rate: float | None = None
    server_mean_ttft_ms: float | None = None
    spec_decode_acceptance_rate: float | None = None  # accepted / proposed draft tokens


def parse(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {metric name: value summed over its label sets}."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        if "{" in line:
            name, rest = line[: line.index("{")], line[line.rindex("}") + 1 :]
        else:
            name, _, rest = line.partition(" ")
        parts = rest.split()
        if not parts:
            continue
        try:
            out[name] += float(parts[0])
        except ValueError:
            continue
    return dict(out)


def _get(m: dict[str, float], names: tuple[str, ...]) -> float | None:
    return next((m[n] for n in names if n in m), None)


def summarize(
    before: dict[str, float], during: list[dict[str, float]], after: dict[str, float], source: str
) -> ServerMetrics:
    """Peaks of the gauges over all samples; rates from the counters' change between before and after."""
    allm = [before, *during, after]

    def peak(names: tuple[str, ...]) -> float | None:
        vals = [v for m in allm if (v := _get(m, names)) is not None]
        return max(vals) if vals else None

    def delta(names: tuple[str, ...]) -> float | None:
        a, b = _get(before, names), _get(after, names)
        return None if a is None or b is None else b - a

    q, h = delta(PREFIX_QUERIES), delta(PREFIX_HITS)
    ts, tc = delta(TTFT_SUM), delta(TTFT_COUNT)
    drafts, accepted = delta(SPEC_DRAFT_TOKENS), delta(SPEC_ACCEPTED_TOKENS)
    return ServerMetrics(
        source=source,
        samples=len(allm),
        kv_cache_usage_peak=peak(KV_USAGE),
        running_peak=peak(RUNNING),
        waiting_peak=peak(WAITING),
        prefix_cache_hit_rate=(h / q) if q and h is not None else None,
        server_mean_ttft_ms=(ts / tc * 1000) if tc and ts is not None else None,
        spec_decode_acceptance_rate=(accepted / drafts) if drafts and accepted is not None else None,
    )


class Scraper:
    """Polls /metrics in a thread (never on the benchmark's event loop) while a run is in progress."""

    def __init__(self, url: str, interval: float = 1.0) -> None:
        self.url, self.interval = url, interval
        self.before: dict[str, float] | None = None
        self.during: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _fetch(self) -> dict[str, float] | None:
        import httpx

        try:
            r = httpx.get(self.url, timeout=2.0)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        m = parse(r.text)
        return m if any(k.startswith("vllm:") for k in m) else None

    def start(self) -> bool:
        """Take the 'before' sample; poll in the background only if the target has vLLM-style metrics."""
        self.before = self._fetch()
        if self.before is None:
            return False
        self._thread = threading.Thread(target=self._loop, name="llmops-bench-metrics", daemon=True)
        self._thread.start()
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if (m := self._fetch()) is not None:
                self.during.append(m)

    def stop(self) -> ServerMetrics | None:
        if self.before is None:
            return None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        after = self._fetch() or (self.during[-1] if self.during else self.before)
        return summarize(self.before, self.during, after, self.url)
