"""SLOs and baseline comparison: which figures gate CI, and by how much a run missed them (pure functions)."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from llmops.bench.metrics import LATENCIES, STATS
from llmops.errors import UsageError
from llmops.profiles.schema import StrictModel

HIGHER_IS_BETTER = (
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "completed",
)
LOWER_IS_BETTER = ("error_rate", "failed")
_STAT_ALIASES = {"p50": "median", "avg": "mean"}
_METRIC_ALIASES = {"e2e": "e2el", "latency": "e2el"}
# Figures a baseline comparison looks at (latency at the median and the tail, and throughput).
BASELINE_KEYS = (
    *(f"{s}_{m}_ms" for m in LATENCIES for s in ("median", "p99")),
    "request_throughput",
    "output_throughput",
    "error_rate",
)


class Check(StrictModel):
    """One gate: the figure, its limit, what the run measured, and by how much it missed."""

    name: str
    key: str
    op: Literal["<=", ">="]
    limit: float
    actual: float | None
    passed: bool
    excess: float | None = None  # how far past the limit, in the figure's unit
    excess_pct: float | None = None

    def describe(self) -> str:
        if self.actual is None:
            return f"{self.name}: not measured (no completed requests)"
        from llmops.humanize import number

        verdict = "ok" if self.passed else "BROKEN"
        extra = (
            ""
            if self.passed or self.excess_pct is None
            else f" (by {number(self.excess, signed=True)}, {self.excess_pct:+,.1f}%)"
        )
        return f"{self.name}: {number(self.actual)} {self.op} {number(self.limit)}? {verdict}{extra}"


def slo_key(name: str) -> tuple[str, Literal["<=", ">="]]:
    """Map an SLO name to a result key and direction: ttft_p99_ms -> (p99_ttft_ms, <=), error_rate -> (<=)."""
    n = name.strip().lower()
    if n in LOWER_IS_BETTER:
        return n, "<="
    if n in HIGHER_IS_BETTER or n == "goodput":
        return ("request_goodput" if n == "goodput" else n), ">="
    m = re.fullmatch(r"([a-z0-9]+)_([a-z0-9]+)_ms", n)
    if m:
        a, b = m.groups()
        for metric, stat in ((a, b), (b, a)):  # ttft_p99_ms, or vLLM's own p99_ttft_ms
            metric, stat = _METRIC_ALIASES.get(metric, metric), _STAT_ALIASES.get(stat, stat)
            if metric in LATENCIES and stat in STATS:
                return f"{stat}_{metric}_ms", "<="
    raise UsageError(
        f"unknown SLO '{name}'",
        hint="use <metric>_<stat>_ms (metric: ttft, tpot, itl, e2el; stat: mean, median, p90, p95, p99, "
        "max), "
        "error_rate, request_throughput, output_throughput or goodput",
    )


def parse_slo(text: str) -> tuple[str, float]:
    """'ttft_p99_ms=500' -> ('ttft_p99_ms', 500.0), validated."""
    name, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"--slo '{text}' has no value", hint="write NAME=VALUE, e.g. --slo ttft_p99_ms=500")
    try:
        limit = float(value)
    except ValueError:
        raise UsageError(
            f"--slo '{text}': '{value}' is not a number", hint="e.g. --slo error_rate=0.01"
        ) from None
    check_slo_limit(name, limit)
    return name.strip(), limit


def check_slo_limit(name: str, limit: object) -> None:
    """A gate that can hold and can break: a finite number, positive for latencies, 0..1 for error_rate.

    Checked before the run: a negative or NaN limit would otherwise fail (or pass) a whole benchmark later.
    """
    key, _ = slo_key(name)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise UsageError(f"SLO {name}={limit!r} is not a finite number", hint="e.g. --slo ttft_p99_ms=500")
    if key == "error_rate" and not 0 <= limit <= 1:
        raise UsageError(f"SLO {name}={limit:g} must be a fraction from 0 to 1", hint="e.g. error_rate=0.01")
    if key.endswith("_ms") and limit <= 0:
        raise UsageError(f"SLO {name}={limit:g} must be a positive number of milliseconds")
    if limit < 0:
        raise UsageError(f"SLO {name}={limit:g} must not be negative")


def check_slos(slos: dict[str, float], figures: dict[str, Any]) -> list[Check]:
    out = []
    for name, limit in slos.items():
        key, op = slo_key(name)
        actual = figures.get(key)
        if actual is None:
            out.append(Check(name=name, key=key, op=op, limit=limit, actual=None, passed=False))
            continue
        passed = actual <= limit if op == "<=" else actual >= limit
        excess = actual - limit
        pct = (excess / limit * 100) if limit else None
        out.append(
            Check(
                name=name,
                key=key,
                op=op,
                limit=limit,
                actual=actual,
                passed=passed,
                excess=excess,
                excess_pct=pct,
            )
        )
    return out


def per_request_limits(slos: dict[str, float]) -> dict[str, float]:
    """Latency SLOs as per-request limits for goodput: any ttft/tpot/e2el SLO bounds each request (ms)."""
    limits: dict[str, float] = {}
    for name, limit in slos.items():
        key, _ = slo_key(name)
        metric = key.split("_")[1] if key.endswith("_ms") else None
        if metric in ("ttft", "tpot", "e2el"):
            limits[metric] = min(limit, limits.get(metric, limit))
    return limits


def compare_baseline(
    figures: dict[str, Any], baseline: dict[str, Any], max_regression_pct: float
) -> list[Check]:
    """Each figure against the baseline's: latencies may rise, throughputs fall, by at most the given %."""
    out = []
    for key in BASELINE_KEYS:
        old, new = baseline.get(key), figures.get(key)
        if old is None or new is None:
            continue
        higher_better = key in HIGHER_IS_BETTER
        if key == "error_rate":  # a rate of 0 has no percentage: allow max_regression points of percent
            limit = old + max_regression_pct / 100
            passed = new <= limit
            out.append(
                Check(
                    name=f"{key} vs baseline",
                    key=key,
                    op="<=",
                    limit=limit,
                    actual=new,
                    passed=passed,
                    excess=new - limit,
                    excess_pct=None,
                )
            )
            continue
        if old == 0:
            continue
        factor = 1 - max_regression_pct / 100 if higher_better else 1 + max_regression_pct / 100
        limit = old * factor
        passed = new >= limit if higher_better else new <= limit
        change = (new - old) / old * 100
        out.append(
            Check(
                name=f"{key} vs baseline ({old:.4g})",
                key=key,
                op=">=" if higher_better else "<=",
                limit=limit,
                actual=new,
                passed=passed,
                excess=new - limit,
                excess_pct=change,
            )
        )
    return out
