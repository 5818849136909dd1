"""The catalog and the PromQL checker: names on the wire, counters through rate(), renamed vLLM metrics."""

from __future__ import annotations

import pytest

from llmops.errors import UsageError
from llmops.monitor import catalog as cat
from llmops.monitor.config import resolve
from llmops.monitor.promql import check, selectors
from llmops.monitor.rules import build
from llmops.monitor.slo import check_boundary, le_matcher
from llmops.workspace import Workspace


def test_wire_names_follow_prometheus_client() -> None:
    assert cat.BY_NAME["llm_cost_dollars"].wire_names() == ("llm_cost_dollars_total",)
    assert cat.BY_NAME["vllm:time_to_first_token_seconds"].wire_names() == (
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:time_to_first_token_seconds_sum",
        "vllm:time_to_first_token_seconds_count",
    )
    assert cat.family_of("llamacpp:tokens_predicted_total") is cat.BY_NAME["llamacpp:tokens_predicted"]


def test_vllm_renames_by_version() -> None:
    assert cat.vllm_name((0, 8), "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc") == (
        "vllm:gpu_cache_usage_perc"
    )
    assert cat.vllm_name(None, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc") == (
        "vllm:kv_cache_usage_perc"
    )
    itl = ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")
    assert cat.vllm_name((0, 10, 2), *itl) == "vllm:time_per_output_token_seconds"
    assert cat.vllm_name((0, 11), *itl) == "vllm:inter_token_latency_seconds"
    assert "vllm:prefix_cache_hits_total" not in cat.exposed((0, 8))
    assert "vllm:gpu_prefix_cache_hits_total" in cat.exposed((0, 9))
    assert "vllm:gpu_prefix_cache_hits_total" not in cat.exposed((0, 10))


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(llm_cost_total_dollars[1h]) > 100", "'llm_cost_total_dollars' is not a metric in the catalog"),
        ("rate(vllm:num_preemptions[5m]) > 0", "exposed as 'vllm:num_preemptions_total'"),
        ("vllm:gpu_cache_usage_perc > 0.9", "use 'vllm:kv_cache_usage_perc'"),
        ("histogram_quantile(0.9, rate(vllm:time_per_output_token_seconds_bucket[5m]))", "not exposed"),
        ("vllm:time_to_first_token_seconds > 1", "exposed as vllm:time_to_first_token_seconds_bucket"),
        ("llm_requests_total > 10", "read it through rate()"),
        ("sum(llm_requests_total)", "read it through rate()"),
        ("delta(vllm:prompt_tokens_total[5m])", "ignores counter resets"),
        ("rate(vllm:num_requests_waiting[5m])", "rate() of a gauge"),
        ('sum(rate(llm_requests_total{code="500"}[5m]))', "has no label 'code'"),
        ('{__name__="vllm:gpu_cache_usage_perc"} > 0.9', "use 'vllm:kv_cache_usage_perc'"),
    ],
)
def test_checker_catches_the_published_mistakes(expr: str, problem: str) -> None:
    found = check(expr)
    assert any(problem in p for p in found), found


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (model) (rate(llm_requests_total{status=~"5.."}[5m])) / sum by (model) (rate(llm_requests_total[5m]))',
        "histogram_quantile(0.99, sum(rate(vllm:time_to_first_token_seconds_bucket[5m])) by (le, model_name))",
        "max by (instance) (vllm:kv_cache_usage_perc) > 0.9 and on (instance) sum by (instance) "
        "(rate(vllm:num_preemptions_total[5m])) > 0",
        'up{job="vllm", instance=~"gpu-.*"} == bool 0',
        "sum(increase(llm_cost_dollars_total[1h] offset 1d)) > 100",
        "llamacpp:requests_processing > 0 and rate(llamacpp:n_decode_total[5m]) == 0",
        "max_over_time(rate(llmops_gateway_retries_total[5m])[1h:1m])",
        "sum without (engine) (deriv(vllm:num_requests_waiting[10m])) > 0",
    ],
)
def test_checker_accepts_correct_expressions(expr: str) -> None:
    assert check(expr) == []


def test_selectors_see_labels_ranges_and_functions() -> None:
    (s,) = selectors('sum by (model) (rate(llm_requests_total{status=~"5..", model!="x"}[5m]))')
    assert s.name == "llm_requests_total" and s.ranged and s.func == "rate"
    assert s.matchers == {"status": "5..", "model": "x"}


def test_recorded_names_are_allowed() -> None:
    assert check("llmops:slo_error_ratio:rate1h > 0.1", recorded={"llmops:slo_error_ratio:rate1h"}) == []
    assert check("llmops:slo_error_ratio:rate1h > 0.1") != []


def test_every_shipped_rule_is_clean_for_every_version() -> None:
    ws = Workspace.model_validate(
        {"bench": {"slos": {"ttft_p99_ms": 500, "e2el_p95_ms": 10000, "error_rate": 0.01}}}
    )
    for version in ("0.8", "0.9", "0.10", "0.11", None):
        ws.monitor.vllm_version = version
        rs = build(resolve(ws))
        assert rs.problems() == [], version
        assert len(rs.alerts()) >= 15


def test_latency_slo_threshold_must_be_a_bucket_boundary() -> None:
    assert check_boundary("ttft_p99_ms", 2000, "llmops_gateway_ttft_seconds") == 2.0
    with pytest.raises(UsageError) as exc:
        check_boundary("ttft_p99_ms", 1500, "llmops_gateway_ttft_seconds")
    assert exc.value.exit_code == 2
    assert "use 1000 or 2000" in exc.value.render()
    ws = Workspace.model_validate({"bench": {"slos": {"ttft_p99_ms": 700}}})
    with pytest.raises(UsageError) as exc:
        build(resolve(ws))
    assert "use 500 or 1000" in exc.value.render()


def test_le_matcher_matches_python_and_go_spellings() -> None:
    assert le_matcher(2.0) == 'le=~"2|2\\\\.0"'
    assert le_matcher(0.5) == 'le="0.5"'


def test_slos_without_a_burn_rate_form_are_noted_not_emitted() -> None:
    ws = Workspace.model_validate(
        {"bench": {"slos": {"ttft_mean_ms": 100, "output_throughput": 50, "e2el_p90_ms": 5000}}}
    )
    rs = build(resolve(ws))
    assert any("mean has no burn-rate form" in n for n in rs.notes)
    assert any("throughput target" in n for n in rs.notes)
    # p90: a 10% budget at 14.4x is more than 100% bad: that tier is left out, the others stay
    assert any("no 1h/5m alert" in n for n in rs.notes)
    windows = {
        r["labels"]["window"]
        for g in rs.groups
        for r in g["rules"]
        if r.get("alert") == "LLMSLOErrorBudgetBurn"
    }
    assert windows == {"6h", "3d"}


def test_thresholds_from_workspace_env_and_bench_slos(monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.model_validate(
        {
            "bench": {"slos": {"ttft_p99_ms": 1000}},
            "monitor": {"error_rate": 0.02, "alert_for": {"HighLLMErrorRate": "10s"}},
        }
    )
    monkeypatch.setenv("LLMOPS_MONITOR_KV_CACHE_USAGE", "0.9")
    c = resolve(ws)
    assert (c.error_rate, c.origins["error_rate"]) == (0.02, "workspace")
    assert (c.kv_cache_usage, c.origins["kv_cache_usage"]) == (0.9, "env")
    assert (c.ttft_p99_s, c.origins["ttft_p99_s"]) == (1.0, "workspace")
    assert (c.latency_p95_s, c.origins["latency_p95_s"]) == (5.0, "default")
    rule = next(r for r in build(c).groups[0]["rules"] if r["alert"] == "HighLLMErrorRate")
    assert rule["for"] == "10s" and "> 0.02" in rule["expr"]


def test_bad_durations_are_refused() -> None:
    ws = Workspace.model_validate({"monitor": {"alert_for": {"HighLLMErrorRate": "ten seconds"}}})
    with pytest.raises(UsageError, match="not a Prometheus duration"):
        resolve(ws)
