"""Pure metric functions: from per-request samples to the vLLM-style summary figures.

Definitions (stated in every result, see DEFINITIONS):
- TTFT: request sent -> first streamed chunk with content. E2E latency: request sent -> last byte.
- ITL: gaps between successive content chunks, pooled over all requests.
- TPOT: per request, (E2E - TTFT) / (output_tokens - 1).
- Goodput: completed requests per second that meet every per-request SLO.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

LATENCIES = ("ttft", "tpot", "itl", "e2el")
STATS = ("mean", "median", "std", "p90", "p95", "p99", "min", "max")

DEFINITIONS = {
    "ttft": "time to first token: request sent -> first streamed chunk with content",
    "itl": "inter-token latency: gaps between successive content chunks, pooled over all requests",
    "tpot": "time per output token: per request (e2el - ttft) / (output_tokens - 1)",
    "e2el": "end-to-end latency: request sent -> last byte of the response",
    "duration": "first request sent -> last response finished (s)",
    "request_throughput": "completed requests / duration",
    "output_throughput": "output tokens of completed requests / duration",
    "total_token_throughput": "(input + output tokens of completed requests) / duration",
    "request_goodput": "completed requests meeting every per-request SLO (ttft, tpot, e2el) / duration",
    "error_rate": "failed / (completed + failed)",
}


@dataclass
class Sample:
    """One request, reduced to seconds and token counts."""

    ok: bool
    error: str | None = None
    ttft: float | None = None
    e2el: float | None = None
    itls: list[float] = field(default_factory=list)
    output_tokens: int = 0
    input_tokens: int = 0
    lag: float = 0.0

    @property
    def tpot(self) -> float | None:
        if not self.ok or self.ttft is None or self.e2el is None or self.output_tokens < 2:
            return None
        return (self.e2el - self.ttft) / (self.output_tokens - 1)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def describe(values: Iterable[float]) -> dict[str, float | None]:
    """mean, median, std, p90, p95, p99, min, max of values; all None when there are none."""
    v = sorted(values)
    if not v:
        return dict.fromkeys(STATS)
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
    return {
        "mean": mean,
        "median": percentile(v, 50),
        "std": std,
        "p90": percentile(v, 90),
        "p95": percentile(v, 95),
        "p99": percentile(v, 99),
        "min": v[0],
        "max": v[-1],
    }


def latency_values(samples: Sequence[Sample], metric: str) -> list[float]:
    """The values of one latency metric in milliseconds, over completed requests (ITL pooled)."""
    ok = [s for s in samples if s.ok]
    if metric == "itl":
        return [x * 1000 for s in ok for x in s.itls]
    if metric == "tpot":
        return [t * 1000 for s in ok if (t := s.tpot) is not None]
    return [getattr(s, metric) * 1000 for s in ok if getattr(s, metric) is not None]


def meets(sample: Sample, limits_ms: dict[str, float]) -> bool:
    """Whether one completed request meets every per-request limit (ttft, tpot, e2el in ms)."""
    if not sample.ok:
        return False
    for metric, limit in limits_ms.items():
        value = sample.tpot if metric == "tpot" else getattr(sample, metric)
        if value is not None and value * 1000 > limit:
            return False
    return True


def summarize(samples: Sequence[Sample], duration: float, limits_ms: dict[str, float] | None = None) -> dict:
    """Every figure of a run, with vLLM's key names (mean_ttft_ms, p99_itl_ms, request_throughput, ...)."""
    ok = [s for s in samples if s.ok]
    failed = len(samples) - len(ok)
    duration = max(duration, 1e-9)
    out_tokens = sum(s.output_tokens for s in ok)
    in_tokens = sum(s.input_tokens for s in ok)
    good = sum(1 for s in ok if meets(s, limits_ms or {}))
    result: dict = {
        "completed": len(ok),
        "failed": failed,
        "error_rate": failed / len(samples) if samples else 0.0,
        "errors": dict(Counter(s.error or "unknown" for s in samples if not s.ok)),
        "duration": duration,
        "total_input_tokens": in_tokens,
        "total_output_tokens": out_tokens,
        "request_throughput": len(ok) / duration,
        "request_goodput": good / duration,
        "output_throughput": out_tokens / duration,
        "total_token_throughput": (in_tokens + out_tokens) / duration,
        "mean_input_tokens": in_tokens / len(ok) if ok else None,
        "mean_output_tokens": out_tokens / len(ok) if ok else None,
    }
    for metric in LATENCIES:
        for stat, value in describe(latency_values(samples, metric)).items():
            result[f"{stat}_{metric}_ms"] = value
    lags = [s.lag * 1000 for s in samples]
    result["mean_schedule_lag_ms"] = sum(lags) / len(lags) if lags else None
    result["max_schedule_lag_ms"] = max(lags) if lags else None
    return result


def cost_per_1k(
    mean_input_tokens: float | None,
    mean_output_tokens: float | None,
    input_per_1m: float,
    output_per_1m: float,
) -> float | None:
    """USD for 1,000 requests like the average one of this run, at list prices per 1M tokens."""
    if mean_input_tokens is None or mean_output_tokens is None:
        return None
    return 1000 * (mean_input_tokens * input_per_1m + mean_output_tokens * output_per_1m) / 1e6


def histogram(values: Sequence[float], bins: int = 30) -> list[tuple[float, float, int]]:
    """(low, high, count) bins over values; used by the HTML report."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [(lo, lo, len(values))]
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return [(lo + i * width, lo + (i + 1) * width, c) for i, c in enumerate(counts)]
