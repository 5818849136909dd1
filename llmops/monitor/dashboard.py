"""A Grafana dashboard for the fleet: the gateway's view of every model, and each vLLM / llama.cpp server.

Exported-dashboard format (what Grafana's Import reads): the data source is the `${DS_PROMETHEUS}` input,
chosen at import. Every target's expression is built from catalog names and checked like the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.monitor import catalog as cat
from llmops.monitor.promql import check

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
RI = "$__rate_interval"
SCHEMA_VERSION = 39  # Grafana 10.x/11.x


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[tuple[str, str], ...]  # (expr, legend)
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""


def _q(q: float, family: str, by: str) -> tuple[str, str]:
    """A quantile target and its legend, e.g. p99 {{model}}."""
    expr = f"histogram_quantile({q:g}, sum by ({by}, le) (rate({family}_bucket[{RI}])))"
    return expr, f"p{q * 100:g} " + "{{" + by + "}}"


def _ratio(bad: str, total: str, by: str) -> str:
    return f"sum by ({by}) (rate({bad}[{RI}])) / sum by ({by}) (rate({total}[{RI}]))"


def gateway_panels() -> list[Panel]:
    m = '{model=~"$model"}'
    return [
        Panel(
            "Requests/s by model",
            ((f"sum by (model) (rate(llm_requests_total{m}[{RI}]))", "{{model}}"),),
            "reqps",
        ),
        Panel(
            "5xx share by model",
            (
                (
                    _ratio(
                        'llm_requests_total{model=~"$model", status=~"5.."}',
                        f"llm_requests_total{m}",
                        "model",
                    ),
                    "{{model}}",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Requests/s by status",
            ((f"sum by (status) (rate(llm_requests_total{m}[{RI}]))", "{{status}}"),),
            "reqps",
        ),
        Panel(
            "E2E latency (gateway)",
            tuple(_q(q, "llm_request_duration_seconds", "model") for q in (0.5, 0.95, 0.99)),
            "s",
        ),
        Panel(
            "TTFT (gateway)", tuple(_q(q, "llmops_gateway_ttft_seconds", "route") for q in (0.5, 0.99)), "s"
        ),
        Panel(
            "Tokens/s in and out",
            ((f"sum by (model, type) (rate(llm_token_usage_total{m}[{RI}]))", "{{model}} {{type}}"),),
            "short",
        ),
        Panel(
            "Cost per hour (USD)",
            ((f"sum by (model) (increase(llm_cost_dollars_total{m}[1h]))", "{{model}}"),),
            "currencyUSD",
        ),
        Panel(
            "Cache hit rate",
            (
                (
                    _ratio(
                        'llmops_gateway_cache_lookups_total{result=~"hit|semantic_hit"}',
                        "llmops_gateway_cache_lookups_total",
                        "route",
                    ),
                    "{{route}}",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Gateway overhead",
            tuple(_q(q, "llmops_gateway_overhead_seconds", "route") for q in (0.5, 0.99)),
            "s",
        ),
        Panel(
            "Deployment state (1 healthy, 0 cooled down)",
            (("llmops_gateway_deployment_healthy", "{{route}} / {{deployment}}"),),
            kind="state-timeline",
        ),
        Panel(
            "Upstream failures/s by reason",
            (
                (
                    "sum by (deployment, reason) (rate(llmops_gateway_deployment_failures_total["
                    + RI
                    + "]))",
                    "{{deployment}} {{reason}}",
                ),
            ),
        ),
        Panel(
            "Retries and fallbacks/s",
            (
                (f"sum by (route) (rate(llmops_gateway_retries_total[{RI}]))", "retries {{route}}"),
                (
                    f"sum by (route, to) (rate(llmops_gateway_fallbacks_total[{RI}]))",
                    "fallback {{route}} -> {{to}}",
                ),
            ),
        ),
        Panel(
            "Rate-limit rejections/s",
            (
                (
                    f"sum by (key, limit) (rate(llmops_gateway_ratelimit_rejections_total[{RI}]))",
                    "{{key}} {{limit}}",
                ),
            ),
        ),
        Panel("In-flight requests", (("sum by (route) (llmops_gateway_inflight_requests)", "{{route}}"),)),
        Panel(
            "Gateway event-loop lag",
            tuple(_q(q, "llmops_gateway_loop_lag_seconds", "instance") for q in (0.5, 0.99, 0.999)),
            "s",
            description="How late the gateway's loop ran a 10 ms timer: every request in flight waited as long",
        ),
    ]


def vllm_panels(v: cat.Version | None) -> list[Panel]:
    kv = cat.vllm_name(v, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    itl = cat.vllm_name(v, "vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")
    pq = cat.vllm_name(v, "vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries")
    ph = cat.vllm_name(v, "vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits")
    by = "model_name"
    panels = [
        Panel(
            "vLLM requests running and waiting",
            (
                (f"sum by ({by}) (vllm:num_requests_running)", "running {{model_name}}"),
                (f"sum by ({by}) (vllm:num_requests_waiting)", "waiting {{model_name}}"),
            ),
        ),
        Panel(
            "vLLM KV-cache usage",
            ((f"max by (instance, {by}) ({kv})", "{{instance}} {{model_name}}"),),
            "percentunit",
        ),
        Panel("vLLM TTFT", tuple(_q(q, "vllm:time_to_first_token_seconds", by) for q in (0.5, 0.99)), "s"),
        Panel("vLLM inter-token latency", tuple(_q(q, str(itl), by) for q in (0.5, 0.99)), "s"),
        Panel(
            "vLLM E2E latency", tuple(_q(q, "vllm:e2e_request_latency_seconds", by) for q in (0.5, 0.99)), "s"
        ),
        Panel(
            "vLLM tokens/s",
            (
                (f"sum by ({by}) (rate(vllm:prompt_tokens_total[{RI}]))", "prompt {{model_name}}"),
                (f"sum by ({by}) (rate(vllm:generation_tokens_total[{RI}]))", "generation {{model_name}}"),
            ),
        ),
        Panel(
            "vLLM preemptions/s",
            ((f"sum by (instance, {by}) (rate(vllm:num_preemptions_total[{RI}]))", "{{instance}}"),),
        ),
        Panel(
            "vLLM finished requests/s by reason",
            (
                (
                    f"sum by ({by}, finished_reason) (rate(vllm:request_success_total[{RI}]))",
                    "{{finished_reason}}",
                ),
            ),
            "reqps",
        ),
    ]
    if pq and ph:
        panels.append(
            Panel(
                "vLLM prefix-cache hit rate",
                ((_ratio(f"{ph}_total", f"{pq}_total", by), "{{model_name}}"),),
                "percentunit",
            )
        )
    return panels


def llamacpp_panels() -> list[Panel]:
    return [
        Panel(
            "llama.cpp requests processing and deferred",
            (
                ("sum by (instance) (llamacpp:requests_processing)", "processing {{instance}}"),
                ("sum by (instance) (llamacpp:requests_deferred)", "deferred {{instance}}"),
            ),
        ),
        Panel(
            "llama.cpp tokens/s",
            (
                (f"sum by (instance) (rate(llamacpp:prompt_tokens_total[{RI}]))", "prompt {{instance}}"),
                (
                    f"sum by (instance) (rate(llamacpp:tokens_predicted_total[{RI}]))",
                    "generated {{instance}}",
                ),
            ),
        ),
    ]


def _panel_json(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {"datasource": DS, "expr": e, "legendFormat": legend, "refId": chr(ord("A") + i)}
            for i, (e, legend) in enumerate(p.targets)
        ],
    }


def build(vllm_version: str | None = None, title: str = "llmops fleet") -> dict[str, Any]:
    v = cat.parse_version(vllm_version)
    rows = (("Gateway", gateway_panels()), ("vLLM", vllm_panels(v)), ("llama.cpp", llamacpp_panels()))
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for name, group in rows:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": name,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y = pid + 1, y + 1
        for i, p in enumerate(group):
            panels.append(_panel_json(p, pid, 12 * (i % 2), y + 8 * (i // 2)))
            pid += 1
        y += 8 * ((len(group) + 1) // 2)
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "the Prometheus that scrapes the gateway and the engines",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "state-timeline", "name": "State timeline", "version": ""},
        ],
        "title": title,
        "uid": "llmops-fleet",
        "tags": ["llmops", "llm", "vllm"],
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "model",
                    "label": "model (gateway route)",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(llm_requests_total, model)", "refId": "model"},
                    "definition": "label_values(llm_requests_total, model)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "refresh": 2,
                    "sort": 1,
                }
            ]
        },
        "panels": panels,
    }


def expressions(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target."""
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]


def problems(dash: dict[str, Any], vllm_version: str | None = None) -> list[str]:
    v = cat.parse_version(vllm_version)
    return [f"{title}: {p}" for title, e in expressions(dash) for p in check(e, version=v)]


def checked(dash: dict[str, Any], vllm_version: str | None = None) -> dict[str, Any]:
    """The dashboard, or an error naming each expression that references an unknown metric."""
    if found := problems(dash, vllm_version):
        from llmops.errors import OperationFailed

        raise OperationFailed("dashboard references unknown metrics:\n" + "\n".join(found))
    return dash
