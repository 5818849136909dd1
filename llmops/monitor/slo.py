"""Multi-window, multi-burn-rate SLO alerts (the SRE workbook's) from the SLOs `bench` already gates on.

An SLO becomes an error budget: `error_rate: 0.01` allows 1% failed requests; `ttft_p99_ms: 2000` allows
1% of requests slower than 2 s. The SLI is the bad fraction over a window; burn rate = bad fraction /
budget. Page when the budget burns 14.4x too fast over 1h and 5m, or 6x over 6h and 30m; open a ticket at
1x over 3d and 6h. A latency SLI counts requests under the threshold with the histogram bucket whose `le` is
that threshold, so the threshold must be a bucket boundary: anything else is refused, naming the nearest.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from llmops.bench.slo import slo_key
from llmops.errors import UsageError
from llmops.monitor import catalog as cat
from llmops.monitor.config import MonitorConfig

RECORD = "llmops:slo_error_ratio:rate{window}"
ALERT = "LLMSLOErrorBudgetBurn"
# (long window, short window, burn-rate factor, severity): the SRE workbook's table.
TIERS = (("1h", "5m", 14.4, "page"), ("6h", "30m", 6.0, "page"), ("3d", "6h", 1.0, "ticket"))
WINDOWS = ("5m", "30m", "1h", "6h", "3d")


@dataclass(frozen=True)
class Sli:
    """How to count bad events for one SLO: a ratio of two rates, grouped by one label."""

    slo: str
    budget: float
    group: str
    bad: str  # selector of bad events (counter or histogram series), without the range
    total: str
    good_minus: bool = False  # latency: bad = total - good (bucket under the threshold)

    def ratio(self, window: str) -> str:
        g = self.group
        total = f"sum by ({g}) (rate({self.total}[{window}]))"
        part = f"sum by ({g}) (rate({self.bad}[{window}]))"
        return f"1 - {part} / {total}" if self.good_minus else f"{part} / {total}"


@dataclass
class SloRules:
    recording: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def le_matcher(threshold: float) -> str:
    """`le` as Python clients write it ("2.0"), also matching Go clients' "2" for whole numbers."""
    text = repr(float(threshold))
    if float(threshold).is_integer():
        return f'le=~"{int(threshold)}|{int(threshold)}\\\\.0"'
    return f'le="{text}"'


def check_boundary(slo: str, limit_ms: float, metric: str) -> float:
    seconds = limit_ms / 1000
    buckets = cat.buckets_of(metric)
    if any(abs(b - seconds) < 1e-9 for b in buckets):
        return seconds
    i = bisect.bisect_left(buckets, seconds)
    near = [b for b in (buckets[i - 1] if i > 0 else None, buckets[i] if i < len(buckets) else None) if b]
    near_ms = " or ".join(f"{b * 1000:g}" for b in near)
    raise UsageError(
        f"SLO {slo}={limit_ms:g}: {seconds:g} s is not a bucket boundary of {metric}, so no series counts "
        "the requests under it",
        hint=f"use {near_ms} (the nearest boundaries, in ms) in bench.slos",
    )


def _latency_metric(metric: str, source: str, v: cat.Version | None) -> tuple[str | None, str]:
    """(histogram family, grouping label) for a latency SLI."""
    if source == "gateway" and metric == "ttft":
        return "llmops_gateway_ttft_seconds", "route"
    if source == "gateway" and metric == "e2el":
        return "llm_request_duration_seconds", "model"
    vllm = {
        "ttft": ("vllm:time_to_first_token_seconds",),
        "e2el": ("vllm:e2e_request_latency_seconds",),
        "itl": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
        "tpot": ("vllm:request_time_per_output_token_seconds",),
    }[metric]
    return cat.vllm_name(v, *vllm), "model_name"


def sli_for(slo: str, limit: float, c: MonitorConfig, v: cat.Version | None) -> Sli | str:
    """The SLI for one bench SLO, or a note saying why it has no burn-rate form."""
    key, op = slo_key(slo)
    if key == "error_rate":
        if not 0 < limit < 1:
            return f"{slo}={limit:g}: an error-rate SLO needs a budget between 0 and 1"
        if c.slo_source == "vllm":
            sel = "vllm:request_success_total"
            return Sli(slo, limit, "model_name", f'{sel}{{finished_reason=~"abort|error"}}', sel)
        return Sli(slo, limit, "model", 'llm_requests_total{status=~"5.."}', "llm_requests_total")
    stat, metric = key.split("_")[0], key.split("_")[1]
    if op != "<=" or not key.endswith("_ms"):
        return f"{slo}: a throughput target has no error budget; `llmops bench` gates on it"
    quantile = 0.5 if stat == "median" else float(stat[1:]) / 100 if stat.startswith("p") else None
    if quantile is None:
        return f"{slo}: a {stat} has no burn-rate form; write the SLO as a percentile (e.g. {metric}_p99_ms)"
    family, group = _latency_metric(metric, c.slo_source, v)
    if family is None:
        return f"{slo}: this vLLM version exposes no {metric} histogram"
    seconds = check_boundary(slo, limit, family)
    return Sli(
        slo,
        round(1 - quantile, 6),
        group,
        f"{family}_bucket{{{le_matcher(seconds)}}}",
        f"{family}_count",
        good_minus=True,
    )


def slo_rules(c: MonitorConfig, v: cat.Version | None) -> SloRules:
    out = SloRules()
    for slo, limit in c.slos.items():
        sli = sli_for(slo, limit, c, v)
        if isinstance(sli, str):
            out.notes.append(sli)
            continue
        for w in WINDOWS:
            out.recording.append(
                {"record": RECORD.format(window=w), "expr": sli.ratio(w), "labels": {"slo": slo}}
            )
        for long, short, factor, severity in TIERS:
            if factor * sli.budget >= 1:
                out.notes.append(
                    f"{slo}: no {long}/{short} alert: {factor:g}x a {sli.budget:g} budget is 100% bad, "
                    "which can never be exceeded"
                )
                continue
            limit_expr = f"({factor:g} * {sli.budget:g})"
            sel = f'{{slo="{slo}"}}'
            alert: dict[str, Any] = {
                "alert": ALERT,
                "expr": f"{RECORD.format(window=long)}{sel} > {limit_expr}"
                f" and {RECORD.format(window=short)}{sel} > {limit_expr}",
                "labels": {"severity": severity, "slo": slo, "window": long},
                "annotations": {
                    "summary": f"SLO {slo}={limit:g} of {{{{ $labels.{sli.group} }}}}: error budget burning "
                    f"{factor:g}x too fast over {long} and {short}",
                    "action": "page: find the cause now (`llmops monitor diagnose URL`)"
                    if severity == "page"
                    else "ticket: the budget will be spent within the SLO period at this rate",
                },
            }
            if ALERT in c.alert_for:
                alert["for"] = c.alert_for[ALERT]
            out.alerts.append(alert)
    return out
