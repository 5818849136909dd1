"""The live view's figures: what an endpoint is doing over the last interval, from two scrapes.

Rates are counter deltas over the time between the scrapes; latency percentiles come from the histogram
buckets observed in that interval (not since the server started). A figure the endpoint cannot give is
None, with the reason in `unavailable` (a gateway has no KV cache; llama-cpp-python has no /metrics).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from llmops.monitor import hist
from llmops.monitor.scrape import Scrape, scrape
from llmops.profiles.schema import StrictModel

NO_METRICS = (
    "this server has no /metrics (llama-cpp-python's server has none): put `llmops gateway` in front of "
    "it and watch the gateway, which measures every request it relays"
)
FIGURES = (
    "requests_running",
    "requests_waiting",
    "kv_cache_usage",
    "requests_per_s",
    "errors_per_s",
    "tokens_in_per_s",
    "tokens_out_per_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
)


class DeploymentView(StrictModel):
    route: str
    deployment: str
    healthy: bool | None
    requests_per_s: float | None = None
    failures_per_s: float | None = None


class EndpointView(StrictModel):
    url: str
    kind: Literal["gateway", "vllm", "llamacpp", "unknown"]
    reachable: bool
    healthy: bool | None = Field(description="/health answered 200; None when it has no /health")
    models: list[str] = Field(default_factory=list)
    has_metrics: bool
    interval_s: float | None = None
    requests_running: float | None = None
    requests_waiting: float | None = None
    kv_cache_usage: float | None = Field(default=None, description="0-1")
    requests_per_s: float | None = None
    errors_per_s: float | None = Field(default=None, description="5xx (gateway), aborted/failed (vLLM)")
    tokens_in_per_s: float | None = None
    tokens_out_per_s: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p99_ms: float | None = None
    e2e_p50_ms: float | None = None
    e2e_p99_ms: float | None = None
    deployments: list[DeploymentView] = Field(default_factory=list)
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="figure -> why this endpoint can't give it"
    )
    error: str | None = None


def _rate(prev: Scrape, cur: Scrape, dt: float, name: str, **match: Any) -> float | None:
    a, b = prev.total(name, **match), cur.total(name, **match)
    if b is None:
        return None
    a = a or 0.0
    return (b - a if b >= a else b) / dt


def _quantiles(prev: Scrape, cur: Scrape, family: str) -> tuple[float | None, float | None] | None:
    """p50 and p99 in ms over the interval; None when the endpoint has no such histogram."""
    now = cur.buckets(family)
    if not now:
        return None
    d = hist.delta(prev.buckets(family), now)
    p50, p99 = hist.quantile(0.5, d), hist.quantile(0.99, d)
    return (None if p50 is None else p50 * 1000, None if p99 is None else p99 * 1000)


def _set_latency(
    v: EndpointView, prev: Scrape, cur: Scrape, what: str, families: tuple[str, ...], why: str
) -> None:
    for fam in families:
        q = _quantiles(prev, cur, fam)
        if q is not None:
            setattr(v, f"{what}_p50_ms", q[0])
            setattr(v, f"{what}_p99_ms", q[1])
            return
    v.unavailable[f"{what}_p50_ms"] = v.unavailable[f"{what}_p99_ms"] = why


def compute(prev: Scrape, cur: Scrape) -> EndpointView:
    """The view of one endpoint from two scrapes of it (prev earlier than cur)."""
    kind = cur.kind() if cur.has_metrics else "unknown"
    v = EndpointView(
        url=cur.url,
        kind=kind,  # type: ignore[arg-type]
        reachable=cur.reachable,
        healthy=None if cur.health_status in (None, 404) else cur.health_status == 200,
        models=cur.models,
        has_metrics=cur.has_metrics,
        error=cur.error,
    )
    if not cur.reachable:
        return v
    if v.healthy is None and cur.models:
        v.healthy = True  # no /health route, but it lists its models
    if not cur.has_metrics:
        v.unavailable = dict.fromkeys(FIGURES, NO_METRICS)
        return v
    dt = cur.t - prev.t if prev.has_metrics and cur.t > prev.t else None
    v.interval_s = dt
    {"gateway": _gateway, "vllm": _vllm, "llamacpp": _llamacpp}.get(kind, _unknown)(v, prev, cur, dt)
    return v


def _gateway(v: EndpointView, prev: Scrape, cur: Scrape, dt: float | None) -> None:
    v.requests_running = cur.total("llmops_gateway_inflight_requests")
    v.unavailable["requests_waiting"] = "the gateway does not queue: requests wait in the engines behind it"
    v.unavailable["kv_cache_usage"] = "an engine figure: watch the vLLM server itself"
    v.unavailable["itl_p50_ms"] = v.unavailable["itl_p99_ms"] = (
        "the gateway records time to first token, not the gaps between tokens (vLLM does)"
    )
    if dt:
        v.requests_per_s = _rate(prev, cur, dt, "llm_requests_total") or 0.0
        v.errors_per_s = (
            _rate(prev, cur, dt, "llm_requests_total", status=lambda s: (s or "").startswith("5")) or 0.0
        )
        v.tokens_in_per_s = _rate(prev, cur, dt, "llm_token_usage_total", type="input") or 0.0
        v.tokens_out_per_s = _rate(prev, cur, dt, "llm_token_usage_total", type="output") or 0.0
        _set_latency(v, prev, cur, "ttft", ("llmops_gateway_ttft_seconds",), "no TTFT histogram")
        _set_latency(v, prev, cur, "e2e", ("llm_request_duration_seconds",), "no duration histogram")
    healthy = cur.group("llmops_gateway_deployment_healthy", "route", "deployment")
    reqs = cur.group("llmops_gateway_deployment_requests_total", "route", "deployment")
    fails = cur.group("llmops_gateway_deployment_failures_total", "route", "deployment")
    preqs = prev.group("llmops_gateway_deployment_requests_total", "route", "deployment")
    pfails = prev.group("llmops_gateway_deployment_failures_total", "route", "deployment")
    for key in sorted(set(healthy) | set(reqs)):
        h = healthy.get(key)
        v.deployments.append(
            DeploymentView(
                route=key[0],
                deployment=key[1],
                healthy=None if h is None else h >= 1,
                requests_per_s=None if not dt else max(0.0, reqs.get(key, 0.0) - preqs.get(key, 0.0)) / dt,
                failures_per_s=None if not dt else max(0.0, fails.get(key, 0.0) - pfails.get(key, 0.0)) / dt,
            )
        )


def _vllm(v: EndpointView, prev: Scrape, cur: Scrape, dt: float | None) -> None:
    v.requests_running = cur.total("vllm:num_requests_running")
    v.requests_waiting = cur.total("vllm:num_requests_waiting")
    v.kv_cache_usage = cur.peak("vllm:kv_cache_usage_perc")
    if v.kv_cache_usage is None:
        v.kv_cache_usage = cur.peak("vllm:gpu_cache_usage_perc")
    if dt:
        v.requests_per_s = _rate(prev, cur, dt, "vllm:request_success_total")
        v.errors_per_s = _rate(
            prev, cur, dt, "vllm:request_success_total", finished_reason=("abort", "error")
        )
        v.tokens_in_per_s = _rate(prev, cur, dt, "vllm:prompt_tokens_total")
        v.tokens_out_per_s = _rate(prev, cur, dt, "vllm:generation_tokens_total")
        _set_latency(v, prev, cur, "ttft", ("vllm:time_to_first_token_seconds",), "no TTFT histogram")
        _set_latency(
            v,
            prev,
            cur,
            "itl",
            ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
            "no inter-token histogram",
        )
        _set_latency(v, prev, cur, "e2e", ("vllm:e2e_request_latency_seconds",), "no E2E histogram")


def _llamacpp(v: EndpointView, prev: Scrape, cur: Scrape, dt: float | None) -> None:
    v.requests_running = cur.total("llamacpp:requests_processing")
    v.requests_waiting = cur.total("llamacpp:requests_deferred")
    v.unavailable["kv_cache_usage"] = "llama-server exposes no KV-cache gauge (its /slots shows per-slot use)"
    v.unavailable["requests_per_s"] = v.unavailable["errors_per_s"] = (
        "llama-server counts tokens, not requests"
    )
    why = "llama-server exposes no latency histograms: watch it through the gateway"
    for what in ("ttft", "itl", "e2e"):
        v.unavailable[f"{what}_p50_ms"] = v.unavailable[f"{what}_p99_ms"] = why
    if dt:
        v.tokens_in_per_s = _rate(prev, cur, dt, "llamacpp:prompt_tokens_total")
        v.tokens_out_per_s = _rate(prev, cur, dt, "llamacpp:tokens_predicted_total")


def _unknown(v: EndpointView, prev: Scrape, cur: Scrape, dt: float | None) -> None:
    v.unavailable = dict.fromkeys(FIGURES, "its /metrics has neither gateway, vLLM nor llama.cpp names")


class Watcher:
    """Keeps the previous scrape of each endpoint so each step reports the last interval."""

    def __init__(self, urls: list[str], timeout: float = 3.0) -> None:
        import httpx

        self.urls = urls
        self.client = httpx.Client(timeout=timeout, trust_env=False)
        self.prev: dict[str, Scrape] = {}

    def step(self) -> list[EndpointView]:
        views = []
        for url in self.urls:
            cur = scrape(url, self.client)
            prev = self.prev.get(url, Scrape(url=cur.url))
            views.append(compute(prev, cur))
            self.prev[url] = cur
        return views

    def close(self) -> None:
        self.client.close()


def sample(urls: list[str], interval: float = 1.0) -> list[EndpointView]:
    """One sample for scripts: two scrapes `interval` seconds apart, the figures of that interval."""
    w = Watcher(urls)
    try:
        w.step()
        time.sleep(interval)
        return w.step()
    finally:
        w.close()
