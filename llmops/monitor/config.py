"""The monitor's settings: thresholds, job names and SLOs from the workspace file, with defaults.

Precedence as everywhere: environment (`LLMOPS_MONITOR_<NAME>`) > workspace (`monitor:`) > defaults;
the latency SLO of vLLM's TTFT alert falls back to `bench.slos.ttft_p99_ms` before the default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmops.errors import UsageError
from llmops.settings import Resolver
from llmops.workspace import MonitorSection, Workspace

DEFAULTS: dict[str, Any] = {
    "vllm_version": None,
    "gateway_job": "llmops-gateway",
    "vllm_job": "vllm",
    "llamacpp_job": "llamacpp",
    "rate_window": "5m",
    "eval_interval": "30s",  # the seed's llm_alerts group
    "slo_source": "gateway",
    "error_rate": 0.05,  # the seed's HighLLMErrorRate
    "latency_p95_s": 5.0,  # the seed's HighLLMLatency
    "cost_per_hour_usd": 100.0,  # the seed's LLMCostSpike
    "kv_cache_usage": 0.95,
    "queue_waiting": 10,
    "ttft_p99_s": 2.0,
    "aborted_ratio": 0.05,
    "llamacpp_deferred": 5,
}
_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")


def check_duration(text: str, where: str) -> str:
    if not text or not _DURATION.match(text):
        raise UsageError(
            f"{where}: '{text}' is not a Prometheus duration", hint="write it like 30s, 5m or 1h"
        )
    return text


@dataclass(frozen=True)
class MonitorConfig:
    """Resolved settings; `origins` says where each came from (env, workspace, default...)."""

    values: dict[str, Any]
    slos: dict[str, float] = field(default_factory=dict)
    alert_for: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def for_(self, alert: str, default: str) -> str:
        return self.alert_for.get(alert, default)


def resolve(ws: Workspace | None = None, **flags: Any) -> MonitorConfig:
    ws = ws or Workspace()
    section: MonitorSection = ws.monitor
    r = Resolver(section="monitor", workspace=section)
    slos = dict(ws.bench.slos)
    for name, default in DEFAULTS.items():
        from_ws = getattr(section, name)
        if name == "ttft_p99_s" and from_ws is None and "ttft_p99_ms" in slos:
            from_ws = slos["ttft_p99_ms"] / 1000  # bench's SLO is the engine's too
        r.take(name, flags.get(name), workspace=from_ws, default=default)
    values = r.resolved.values()
    check_duration(values["rate_window"], "monitor.rate_window")
    check_duration(values["eval_interval"], "monitor.eval_interval")
    for alert, text in section.alert_for.items():
        check_duration(text, f"monitor.alert_for.{alert}")
    return MonitorConfig(
        values=values,
        slos=slos,
        alert_for=dict(section.alert_for),
        origins={k: s.origin for k, s in r.resolved.items()},
    )
