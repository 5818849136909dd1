"""Every metric the gateway exposes, with the names fixed in the project brief (monitor alerts on them).

One registry per gateway instance (tests run several in one process). Labels stay bounded: route,
deployment and key *names*, never a prompt or a raw key.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from llmops.gateway.fastmetrics import Collector, Series
from llmops.gateway.looplag import LAG_BUCKETS

# Every SLO threshold must be a bucket boundary (burn-rate SLIs read bucket{le=threshold}).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
ERROR_WINDOW_S = 60


class _ErrorRate:
    """5xx share over the last 60 s for one model, in one-second buckets."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, total, errors]

    def add(self, now: int, error: bool) -> None:
        b = self.buckets
        if not b or b[-1][0] != now:
            b.append([now, 0, 0])
            while b and b[0][0] <= now - ERROR_WINDOW_S:
                b.popleft()
        b[-1][1] += 1
        b[-1][2] += error

    def rate(self, now: int) -> float:
        total = errors = 0
        for sec, t, e in self.buckets:
            if sec > now - ERROR_WINDOW_S:
                total += t
                errors += e
        return errors / total if total else 0.0


class Metrics:
    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

        disable_created_metrics()  # *_created series double the exposition and no rule uses them

        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        # The series every request updates: lock-free, on the event loop (llmops.gateway.fastmetrics).
        self.requests = Series(
            "counter", "llm_requests", "Requests by route and HTTP status", ["model", "status"]
        )
        self.duration = Series(
            "histogram", "llm_request_duration_seconds", "Request duration", ["model"], DURATION_BUCKETS
        )
        self.tokens = Series("counter", "llm_token_usage", "Tokens by route and type", ["model", "type"])
        self.cost = Series("counter", "llm_cost_dollars", "Spend in USD by route", ["model"])
        self.error_rate = Gauge("llm_error_rate", "5xx share over the last 60 s", ["model"], registry=r)
        p = "llmops_gateway_"
        self.dep_requests = Series(
            "counter", p + "deployment_requests", "Upstream tries per deployment", ["route", "deployment"]
        )
        self.dep_failures = Counter(
            p + "deployment_failures",
            "Failed upstream tries by reason",
            ["route", "deployment", "reason"],
            registry=r,
        )
        self.dep_healthy = Gauge(
            p + "deployment_healthy", "1 healthy, 0 cooled down", ["route", "deployment"], registry=r
        )
        self.fallbacks = Counter(p + "fallbacks", "Fallbacks to another route", ["route", "to"], registry=r)
        self.retries = Counter(p + "retries", "Retried upstream tries", ["route"], registry=r)
        self.ttft = Series(
            "histogram",
            p + "ttft_seconds",
            "Time to the first token (first streamed chunk with content; the whole reply if not streamed)",
            ["route"],
            TTFT_BUCKETS,
        )
        self.overhead = Series(
            "histogram", p + "overhead_seconds", "Time the gateway itself added", ["route"], OVERHEAD_BUCKETS
        )
        self.rejections = Counter(
            p + "ratelimit_rejections", "Requests refused by a limit", ["key", "limit"], registry=r
        )
        self.inflight = Series("gauge", p + "inflight_requests", "Requests in flight", ["route"])
        self.loop_lag = Series(
            "histogram",
            p + "loop_lag_seconds",
            "How late the event loop ran a 10 ms timer: a stall every request in flight waited through",
            [],
            LAG_BUCKETS,
        )
        r.register(
            Collector(
                [
                    self.requests,
                    self.duration,
                    self.tokens,
                    self.cost,
                    self.dep_requests,
                    self.ttft,
                    self.overhead,
                    self.inflight,
                    self.loop_lag,
                ]
            )
        )
        # Issue 13's stages count with these (names fixed in the brief).
        self.cache_lookups = Counter(
            p + "cache_lookups", "Cache lookups by result", ["route", "result"], registry=r
        )
        self.cache_saved_tokens = Counter(
            p + "cache_saved_tokens", "Tokens not generated thanks to the cache", ["route"], registry=r
        )
        self.cache_saved_dollars = Counter(
            p + "cache_saved_dollars", "USD not spent thanks to the cache", ["route"], registry=r
        )
        self.guard_matches = Counter(
            p + "guard_matches", "Guard rule matches", ["route", "rule", "action"], registry=r
        )
        # Operations (issue 21): hot reloads, the configuration generation in force, key management.
        self.reloads = Counter(
            p + "config_reloads",
            "Configuration reloads by result (ok, unchanged, invalid)",
            ["result"],
            registry=r,
        )
        self.config_generation = Gauge(
            p + "config_generation",
            "Generation of the configuration in force (1 at start, +1 per change)",
            registry=r,
        )
        self.key_operations = Counter(
            p + "key_operations", "Run-time key operations (create, revoke, rotate)", ["op"], registry=r
        )
        self.spans_dropped = Counter(
            p + "spans_dropped",
            "Trace spans not delivered (collector down or slow, export queue full)",
            registry=r,
        )
        self._rates: dict[str, _ErrorRate] = {}
        self._children: dict[tuple, Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: the hot path skips prometheus_client's lookup and lock."""
        key = (id(metric), *labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def finished(self, model: str, status: int, duration_s: float) -> None:
        """One request answered (any status): the seed's request, duration and error-rate series."""
        self.child(self.requests, model, str(status)).inc()
        self.child(self.duration, model).observe(duration_s)
        rate = self._rates.get(model)
        if rate is None:
            rate = self._rates[model] = _ErrorRate()
        rate.add(int(time.time()), status >= 500)

    def exposition(self) -> tuple[bytes, str]:
        """The text format, with the error-rate gauges brought up to date first."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        now = int(time.time())
        for model, rate in self._rates.items():
            self.error_rate.labels(model).set(rate.rate(now))
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
