"""Diagnose a running endpoint the way the seed's troubleshooting section asks: is it reachable and healthy,
which models does it serve, does one short streamed request come back (and how fast is its first token),
and what do its metrics say about the cause. Each finding carries the recommended action.
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from pydantic import Field

from llmops.monitor.config import MonitorConfig
from llmops.monitor.scrape import Scrape, root_of, scrape
from llmops.monitor.top import NO_METRICS, EndpointView, compute
from llmops.profiles.schema import StrictModel

Status = Literal["ok", "info", "warn", "fail"]

# The seed guide's troubleshooting table, as actions.
RATE_LIMIT_ACTION = (
    "back off exponentially and honour Retry-After; batch requests; raise the provider tier or spread "
    "the load over several keys or deployments; behind `llmops gateway`, give the route a fallback "
    "(e.g. gpt-4-turbo -> gpt-3.5-turbo)"
)
TIMEOUT_ACTION = (
    "check the server's health and queue (`llmops monitor top URL`); retry with back-off; a longer "
    "timeout or a shorter prompt helps only if the server is merely slow"
)
OOM_ACTION = (
    "lower max_model_len or max_num_seqs, use an fp8 KV cache (kv_cache_dtype: fp8), or add GPUs "
    "(more tensor parallel)"
)
QUEUE_ACTION = (
    "add replicas and put `llmops gateway` in front (least-outstanding-requests routing sends each "
    "request to the least busy one), or lower the load"
)


class Finding(StrictModel):
    check: str
    status: Status
    message: str
    action: str | None = None


class Diagnosis(StrictModel):
    url: str
    kind: str
    models: list[str] = Field(default_factory=list)
    model: str | None = Field(default=None, description="the model the test request asked for")
    ttft_ms: float | None = None
    findings: list[Finding] = Field(default_factory=list)
    view: EndpointView | None = None

    @property
    def ok(self) -> bool:
        return all(f.status != "fail" for f in self.findings)

    def add(self, check: str, status: Status, message: str, action: str | None = None) -> None:
        self.findings.append(Finding(check=check, status=status, message=message, action=action))


class Probe(StrictModel):
    """One short streamed chat request."""

    status: int = 0
    error: str | None = None
    detail: str | None = None
    ttft_ms: float | None = None
    chunks: int = 0
    last_chunk_ms: float | None = None
    elapsed_ms: float = 0.0


def probe(url: str, model: str, timeout: float, api_key: str | None = None) -> Probe:
    """Send one streamed chat request with the bench client (timestamps as bytes arrive)."""
    from llmops.bench.client import StreamingClient, build_request
    from llmops.bench.sse import ChatScanner

    base = root_of(url) + "/v1"
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello in five words."}],
            "max_tokens": 8,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()

    async def go() -> Probe:
        client = StreamingClient(base, timeout=timeout)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            rec = await client.request(
                build_request(client, "/v1/chat/completions", body, headers), ChatScanner()
            )
        finally:
            client.close()
        times = rec.content_times
        return Probe(
            status=rec.status,
            error=rec.error,
            detail=rec.detail,
            ttft_ms=(times[0] - rec.t_send) * 1000 if times else None,
            chunks=len(times),
            last_chunk_ms=(times[-1] - rec.t_send) * 1000 if times else None,
            elapsed_ms=(rec.t_end - rec.t_send) * 1000,
        )

    return asyncio.run(go())


def diagnose(
    url: str,
    cfg: MonitorConfig,
    *,
    model: str | None = None,
    timeout: float = 30.0,
    api_key: str | None = None,
    catalog: object | None = None,
) -> Diagnosis:
    before = scrape(url)
    d = Diagnosis(
        url=before.url, kind=before.kind() if before.has_metrics else "unknown", models=before.models
    )
    if not before.reachable:
        d.add(
            "reachable",
            "fail",
            before.error or f"cannot connect to {before.url}",
            "is the server running on that host and port? (`llmops serve MODEL` starts one)",
        )
        return d
    d.add("reachable", "ok", f"{before.url} answers")
    _health(d, before, url)
    if not d.models and model is None:
        d.add("models", "fail", "GET /v1/models lists no model", "check the server's --served-model-name")
        return d
    d.add("models", "ok" if d.models else "warn", f"serves {', '.join(d.models) or 'nothing listed'}")
    d.model = model or d.models[0]
    p = probe(url, d.model, timeout, api_key)
    d.ttft_ms = p.ttft_ms
    _request(d, p, timeout, cfg)
    after = scrape(url)
    d.view = compute(before, after)
    _metrics(d, before, after, d.view, cfg, catalog)
    return d


def _health(d: Diagnosis, s: Scrape, url: str) -> None:
    if s.health_status == 200:
        d.add("health", "ok", "/health answers 200")
    elif s.health_status == 404:
        d.add("health", "info", "no /health route (llama-cpp-python has none): judged by /v1/models instead")
    else:
        d.add(
            "health",
            "fail",
            f"/health answers {s.health_status}",
            "the server reports itself unhealthy: see its log",
        )
    if d.kind == "gateway":
        import httpx

        try:
            r = httpx.get(s.url + "/health/ready", timeout=3.0, trust_env=False)
        except httpx.HTTPError:
            return
        if r.status_code != 200:
            d.add(
                "health",
                "fail",
                f"/health/ready answers {r.status_code}: a route has no deployment that is not cooled down",
                "diagnose each deployment's URL; configure a fallback route",
            )


def _request(d: Diagnosis, p: Probe, timeout: float, cfg: MonitorConfig) -> None:
    if p.error is None:
        status: Status = "ok"
        msg = f"streamed {p.chunks} chunks; time to first token {p.ttft_ms:.0f} ms, done in {p.elapsed_ms:.0f} ms"
        action = None
        if p.ttft_ms is not None and p.ttft_ms > cfg.ttft_p99_s * 1000:
            status, action = "warn", TIMEOUT_ACTION
            msg += f" (slower than the {cfg.ttft_p99_s * 1000:g} ms TTFT SLO)"
        d.add("request", status, msg, action)
        return
    detail = (p.detail or "").strip()
    if p.status == 429:
        d.add("request", "fail", f"rate limited: the server answered 429 ({detail[:160]})", RATE_LIMIT_ACTION)
    elif p.status >= 500:
        d.add(
            "request",
            "fail",
            f"server error {p.status} ({detail[:160]})",
            "read the server's log (`llmops doctor --log FILE`); the metrics below may name the cause",
        )
    elif p.status >= 400:
        d.add(
            "request",
            "fail",
            f"the request was refused with {p.status} ({detail[:160]})",
            "check the model name and the key",
        )
    elif p.error == "timeout" and not p.chunks:
        d.add(
            "request",
            "fail",
            f"timeout: no first token within {timeout:g} s (slow first token: a long queue, a huge prompt, "
            "or a server that accepted the request and went silent)",
            TIMEOUT_ACTION,
        )
    elif p.error == "timeout":
        gap = (p.elapsed_ms - (p.last_chunk_ms or 0)) / 1000
        d.add(
            "request",
            "fail",
            f"timeout: the stream stalled: first token after {p.ttft_ms:.0f} ms, then nothing for {gap:.1f} s "
            f"({p.chunks} chunks)",
            "the engine stopped generating mid-stream: check its health and log; the gateway's stall "
            "timeout cuts such streams and retries another deployment",
        )
    elif p.error == "connect":
        d.add("request", "fail", detail or "cannot connect", "is the server still running?")
    else:
        d.add("request", "fail", f"{p.error}: {detail[:200]}", TIMEOUT_ACTION)


def _metrics(
    d: Diagnosis, before: Scrape, after: Scrape, v: EndpointView, cfg: MonitorConfig, catalog: object | None
) -> None:
    if not after.has_metrics:
        d.add("metrics", "info", NO_METRICS)
        return
    if v.kind == "vllm":
        _vllm(d, after, v, cfg, catalog)
    elif v.kind == "gateway":
        _gateway(d, after, cfg)
    elif v.kind == "llamacpp" and (v.requests_waiting or 0) > cfg.llamacpp_deferred:
        d.add(
            "metrics",
            "warn",
            f"{v.requests_waiting:g} requests wait for a llama-server slot",
            "raise --parallel if memory allows, or add replicas behind the gateway",
        )
    if not any(f.check == "metrics" for f in d.findings):
        d.add("metrics", "ok", f"{v.kind} metrics show no saturation, queue or failing deployment")


def _vllm(d: Diagnosis, s: Scrape, v: EndpointView, cfg: MonitorConfig, catalog: object | None) -> None:
    preempted = s.total("vllm:num_preemptions_total") or 0
    kv = v.kv_cache_usage
    if kv is not None and kv >= cfg.kv_cache_usage:
        plan = _plan_hint(d.model, catalog)
        status: Status = "fail" if preempted else "warn"
        d.add(
            "metrics",
            status,
            f"KV cache {kv:.0%} full"
            + (
                f" and {preempted:g} preemptions so far (requests evicted and recomputed)"
                if preempted
                else ""
            ),
            OOM_ACTION + (f". {plan}" if plan else ""),
        )
    if (v.requests_waiting or 0) > cfg.queue_waiting:
        d.add(
            "metrics",
            "warn",
            f"{v.requests_waiting:g} requests waiting behind {v.requests_running or 0:g} running",
            QUEUE_ACTION,
        )
    failed = s.total("vllm:request_success_total", finished_reason=("abort", "error")) or 0
    total = s.total("vllm:request_success_total") or 0
    if total and failed / total > cfg.aborted_ratio:
        d.add(
            "metrics",
            "warn",
            f"{failed / total:.0%} of finished requests were aborted or failed",
            TIMEOUT_ACTION,
        )


def _gateway(d: Diagnosis, s: Scrape, cfg: MonitorConfig) -> None:
    down = [
        f"{r}/{dep}"
        for (r, dep), h in s.group("llmops_gateway_deployment_healthy", "route", "deployment").items()
        if h < 1
    ]
    if down:
        d.add(
            "metrics",
            "fail",
            f"cooled down after failures: {', '.join(sorted(down))}",
            "diagnose each of those deployments' URLs; the gateway probes and readmits them when they recover",
        )
    fails = s.group("llmops_gateway_deployment_failures_total", "deployment", "reason")
    limited = sorted({dep for (dep, reason), n in fails.items() if reason == "status_429" and n > 0})
    if limited:
        d.add("metrics", "warn", f"upstream 429s from {', '.join(limited)}", RATE_LIMIT_ACTION)
    stalls = sorted(
        {
            f"{dep} ({reason})"
            for (dep, reason), n in fails.items()
            if reason in ("timeout", "stall", "stream_cut") and n > 0
        }
    )
    if stalls:
        d.add("metrics", "warn", f"upstream timeouts or cut streams: {', '.join(stalls)}", TIMEOUT_ACTION)
    rejected = s.group("llmops_gateway_ratelimit_rejections_total", "key", "limit")
    if any(n > 0 for n in rejected.values()):
        who = ", ".join(f"{k} ({lim})" for (k, lim), n in sorted(rejected.items()) if n > 0)
        d.add(
            "metrics",
            "info",
            f"the gateway's own limits refused requests of: {who}",
            "raise the key's rpm/tpm/budget if intended",
        )
    rates = {lab.get("model", ""): val for lab, val in s.select("llm_error_rate")}
    high = sorted(m for m, r in rates.items() if r > cfg.error_rate)
    if high:
        d.add(
            "metrics",
            "warn",
            f"5xx share over the last minute above {cfg.error_rate:.0%} for {', '.join(high)}",
            "see which deployment fails above",
        )


def _plan_hint(model: str | None, catalog: object | None) -> str | None:
    """`plan` figures for the served model when a profile matches it: capacity now, and with each remedy."""
    if not model or catalog is None:
        return None
    from llmops.errors import LlmopsError
    from llmops.plan import PlanRequest, make_plan

    try:
        prof = catalog.model(model).profile  # type: ignore[attr-defined]
        node = catalog.node(prof.default_node).profile if prof.default_node else None  # type: ignore[attr-defined]
        if node is None:
            return None
        base = make_plan(prof, node)
    except (LlmopsError, ValueError):
        return None
    parts = [
        f"`llmops plan {prof.name}`: {base.kv_cache_tokens:,} KV tokens, {base.max_concurrency:.1f} concurrent at {base.max_model_len:,} tokens"
    ]
    for label, req in (
        ("fp8 KV cache", PlanRequest(kv_cache_dtype="fp8")),
        (
            f"max_model_len {base.max_model_len // 2:,}",
            PlanRequest(max_model_len=max(1, base.max_model_len // 2)),
        ),
        (f"tp {base.tp * 2}", PlanRequest(tp=base.tp * 2)),
    ):
        try:
            alt = make_plan(prof, node, req)
        except (LlmopsError, ValueError):
            continue
        if alt.fits:
            parts.append(f"{label}: {alt.max_concurrency:.1f} concurrent")
    return "; ".join(parts)
