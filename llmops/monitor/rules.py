"""Prometheus alerting and recording rules for the gateway, vLLM and llama.cpp, from the workspace.

Every expression is built from catalog names and checked against the catalog before it is returned
(`RuleSet.problems()`), so a rule that references a metric no server exposes cannot ship.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmops.monitor import catalog as cat
from llmops.monitor.config import MonitorConfig
from llmops.monitor.promql import check
from llmops.monitor.slo import slo_rules


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    action: str

    def rule(self, cfg: MonitorConfig) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": cfg.for_(self.name, self.for_),
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "action": self.action},
        }


@dataclass
class RuleSet:
    groups: list[dict[str, Any]]
    version: cat.Version | None = None
    notes: list[str] = field(default_factory=list)  # SLOs that have no burn-rate form, and why

    def document(self) -> dict[str, Any]:
        return {"groups": self.groups}

    def recorded(self) -> set[str]:
        return {r["record"] for g in self.groups for r in g["rules"] if "record" in r}

    def expressions(self) -> list[tuple[str, str]]:
        """(rule name, expr) for every rule."""
        return [(r.get("alert") or r["record"], r["expr"]) for g in self.groups for r in g["rules"]]

    def alerts(self) -> list[str]:
        return [r["alert"] for g in self.groups for r in g["rules"] if "alert" in r]

    def problems(self) -> list[str]:
        rec = self.recorded()
        return [
            f"{name}: {p}"
            for name, expr in self.expressions()
            for p in check(expr, version=self.version, recorded=rec)
        ]


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


# A gateway whose event loop runs a 10 ms timer this late at p99 delays every request by about as much.
LOOP_LAG_P99_S = 0.05


def gateway_alerts(c: MonitorConfig) -> list[Alert]:
    w = c.rate_window
    return [
        Alert(
            "HighLLMErrorRate",
            f'sum by (model) (rate(llm_requests_total{{status=~"5.."}}[{w}]))'
            f" / sum by (model) (rate(llm_requests_total[{w}])) > {c.error_rate:g}",
            "5m",
            "warning",
            f"model {{{{ $labels.model }}}}: more than {_pct(c.error_rate)} of requests answered 5xx",
            "check the deployments (`llmops monitor diagnose URL`) and the upstream's logs",
        ),
        Alert(
            "HighLLMLatency",
            f"histogram_quantile(0.95, sum by (model, le) (rate(llm_request_duration_seconds_bucket[{w}])))"
            f" > {c.latency_p95_s:g}",
            "5m",
            "warning",
            f"model {{{{ $labels.model }}}}: p95 request latency above {c.latency_p95_s:g} s",
            "look for a queue (vLLM num_requests_waiting) or a slow deployment; add replicas",
        ),
        Alert(
            "LLMCostSpike",
            f"sum by (model) (increase(llm_cost_dollars_total[1h])) > {c.cost_per_hour_usd:g}",
            "5m",
            "critical",
            f"model {{{{ $labels.model }}}}: spent more than ${c.cost_per_hour_usd:g} in the last hour",
            "find the key behind it (`llmops gateway usage --by key`) and set a budget_usd or rpm limit",
        ),
        Alert(
            "LLMModelUnavailable",
            "max by (route) (llmops_gateway_deployment_healthy) == 0",
            "2m",
            "critical",
            "route {{ $labels.route }}: every deployment is cooled down",
            "bring a deployment back (`llmops monitor diagnose URL` on each) or configure a fallback route",
        ),
        Alert(
            "LLMGatewayDown",
            f'up{{job="{c.gateway_job}"}} == 0',
            "2m",
            "critical",
            "gateway {{ $labels.instance }} is not answering /metrics",
            "check the gateway process or pod (`kubectl logs`), then `llmops monitor diagnose URL`",
        ),
        Alert(
            "LLMDeploymentCooledDown",
            "llmops_gateway_deployment_healthy == 0",
            "5m",
            "warning",
            "deployment {{ $labels.deployment }} of route {{ $labels.route }} is cooled down",
            "the breaker opened after failures: `llmops monitor diagnose` the deployment's URL",
        ),
        Alert(
            "LLMUpstreamRateLimited",
            f'sum by (route, deployment) (rate(llmops_gateway_deployment_failures_total{{reason="status_429"}}[{w}]))'
            f" / sum by (route, deployment) (rate(llmops_gateway_deployment_requests_total[{w}])) > 0.05",
            "5m",
            "warning",
            "deployment {{ $labels.deployment }} answers 429 to more than 5% of calls",
            "the provider's limit: back off, raise the tier, add another key or deployment, or a fallback",
        ),
        Alert(
            "LLMGatewayLoopLag",
            "histogram_quantile(0.99, sum by (instance, le) "
            f"(rate(llmops_gateway_loop_lag_seconds_bucket[{w}]))) > {LOOP_LAG_P99_S:g}",
            "10m",
            "warning",
            f"gateway {{{{ $labels.instance }}}}: its event loop ran more than {LOOP_LAG_P99_S * 1000:g} ms "
            "late at p99 for 10 minutes (every request in flight waits that long)",
            "the replica is short of CPU or something blocks its loop: add replicas (or CPU), then rerun "
            "with LLMOPS_GATEWAY_LAG_TRACE=FILE to see what runs during the stalls",
        ),
    ]


def vllm_alerts(c: MonitorConfig, v: cat.Version | None) -> list[Alert]:
    w, by = c.rate_window, "instance, model_name"
    kv = cat.vllm_name(v, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    return [
        Alert(
            "VllmEngineDown",
            f'up{{job="{c.vllm_job}"}} == 0',
            "1m",
            "critical",
            "vLLM {{ $labels.instance }} is not answering /metrics",
            "check the engine log (`llmops doctor --log FILE`) for out-of-memory or start-up failures",
        ),
        Alert(
            "VllmKvCacheFullPreempting",
            f"max by ({by}) ({kv}) > {c.kv_cache_usage:g}"
            f" and sum by ({by}) (rate(vllm:num_preemptions_total[{w}])) > 0",
            "5m",
            "warning",
            f"{{{{ $labels.model_name }}}} on {{{{ $labels.instance }}}}: KV cache above "
            f"{_pct(c.kv_cache_usage)} and requests are being preempted",
            "lower max_model_len or max_num_seqs, use an fp8 KV cache, or add GPUs (more TP); "
            "`llmops plan` shows the KV-cache figures",
        ),
        Alert(
            "VllmQueueGrowing",
            f"sum by ({by}) (vllm:num_requests_waiting) > {c.queue_waiting:g}"
            f" and sum by ({by}) (delta(vllm:num_requests_waiting[{w}])) > 0",
            "5m",
            "warning",
            f"{{{{ $labels.model_name }}}} on {{{{ $labels.instance }}}}: more than {c.queue_waiting:g} "
            "requests waiting, and the queue is growing",
            "add replicas behind the gateway (least-busy routing spreads the load) or lower the load",
        ),
        Alert(
            "VllmTtftOverSlo",
            f"histogram_quantile(0.99, sum by ({by}, le) (rate(vllm:time_to_first_token_seconds_bucket[{w}])))"
            f" > {c.ttft_p99_s:g}",
            "5m",
            "warning",
            f"{{{{ $labels.model_name }}}} on {{{{ $labels.instance }}}}: p99 time to first token above "
            f"{c.ttft_p99_s:g} s",
            "a queue or long prompts: check num_requests_waiting, enable chunked prefill, add replicas",
        ),
        Alert(
            "VllmRequestsFailing",
            f'sum by ({by}) (rate(vllm:request_success_total{{finished_reason=~"abort|error"}}[{w}]))'
            f" / sum by ({by}) (rate(vllm:request_success_total[{w}])) > {c.aborted_ratio:g}",
            "5m",
            "warning",
            f"{{{{ $labels.model_name }}}} on {{{{ $labels.instance }}}}: more than {_pct(c.aborted_ratio)} "
            "of requests aborted or failed",
            "clients giving up (timeouts) or engine errors: compare TTFT with the clients' timeout",
        ),
    ]


def llamacpp_alerts(c: MonitorConfig) -> list[Alert]:
    w = c.rate_window
    return [
        Alert(
            "LlamaCppDown",
            f'up{{job="{c.llamacpp_job}"}} == 0',
            "1m",
            "critical",
            "llama-server {{ $labels.instance }} is not answering /metrics",
            "check the server log (`llmops doctor --log FILE`); llama-server needs --metrics",
        ),
        Alert(
            "LlamaCppRequestsDeferred",
            f"llamacpp:requests_deferred > {c.llamacpp_deferred:g}",
            "5m",
            "warning",
            f"llama-server {{{{ $labels.instance }}}}: more than {c.llamacpp_deferred:g} requests wait for a slot",
            "raise --parallel (slots) if memory allows, or add replicas behind the gateway",
        ),
        Alert(
            "LlamaCppStalled",
            f"llamacpp:requests_processing > 0 and rate(llamacpp:n_decode_total[{w}]) == 0",
            "5m",
            "critical",
            "llama-server {{ $labels.instance }}: requests are processing but nothing is decoded",
            "the server is stuck: restart it and check its log",
        ),
    ]


def build(c: MonitorConfig) -> RuleSet:
    """Every rule group; raises UsageError for an SLO whose threshold is not a bucket boundary."""
    v = cat.parse_version(c.vllm_version)
    groups = [
        _group("llmops-gateway", gateway_alerts(c), c),
        _group("llmops-vllm", vllm_alerts(c, v), c),
        _group("llmops-llamacpp", llamacpp_alerts(c), c),
    ]
    slo = slo_rules(c, v)
    if slo.recording:
        groups.append({"name": "llmops-slo-recording", "interval": c.eval_interval, "rules": slo.recording})
        groups.append({"name": "llmops-slo-alerts", "interval": c.eval_interval, "rules": slo.alerts})
    return RuleSet(groups=groups, version=v, notes=slo.notes)


def _group(name: str, alerts: list[Alert], c: MonitorConfig) -> dict[str, Any]:
    return {"name": name, "interval": c.eval_interval, "rules": [a.rule(c) for a in alerts]}


def render(c: MonitorConfig, *, k8s: bool = False, namespace: str | None = None) -> tuple[RuleSet, str]:
    """The rules as file text (plain rules file, or a PrometheusRule), checked against the catalog."""
    from llmops.errors import OperationFailed

    rs = build(c)
    if problems := rs.problems():
        raise OperationFailed("generated rules reference unknown metrics:\n" + "\n".join(problems))
    return rs, to_yaml(prometheus_rule(rs, namespace=namespace) if k8s else rs.document())


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def prometheus_rule(rs: RuleSet, name: str = "llmops", namespace: str | None = None) -> dict[str, Any]:
    """The same groups as a prometheus-operator PrometheusRule (its `spec` is a plain rules file)."""
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "llmops"}}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": rs.document(),
    }
