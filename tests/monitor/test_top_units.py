"""The live view's arithmetic: histogram deltas and quantiles, rates between two scrapes."""

from __future__ import annotations

import math

from llmops.monitor import hist
from llmops.monitor.scrape import Scrape, parse, root_of
from llmops.monitor.top import NO_METRICS, compute

VLLM_1 = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",engine="0"} 3
vllm:num_requests_waiting{model_name="m",engine="0"} 7
vllm:kv_cache_usage_perc{model_name="m",engine="0"} 0.5
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{model_name="m",engine="0"} 1000
vllm:prompt_tokens_total{model_name="m",engine="0"} 5000
# TYPE vllm:request_success counter
vllm:request_success_total{model_name="m",engine="0",finished_reason="stop"} 10
vllm:request_success_total{model_name="m",engine="0",finished_reason="abort"} 1
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{model_name="m",engine="0",le="0.1"} 10
vllm:time_to_first_token_seconds_bucket{model_name="m",engine="0",le="0.5"} 10
vllm:time_to_first_token_seconds_bucket{model_name="m",engine="0",le="+Inf"} 10
vllm:time_to_first_token_seconds_count{model_name="m",engine="0"} 10
vllm:time_to_first_token_seconds_sum{model_name="m",engine="0"} 0.5
"""
VLLM_2 = (
    VLLM_1.replace(
        'generation_tokens_total{model_name="m",engine="0"} 1000',
        'generation_tokens_total{model_name="m",engine="0"} 1500',
    )
    .replace('finished_reason="stop"} 10', 'finished_reason="stop"} 18')
    .replace('le="0.1"} 10', 'le="0.1"} 10')
    .replace('le="0.5"} 10', 'le="0.5"} 20')
    .replace('le="+Inf"} 10', 'le="+Inf"} 20')
)


def scrape_of(text: str, t: float) -> Scrape:
    return Scrape(
        url="http://x:1", t=t, reachable=True, health_status=200, metrics_status=200, samples=parse(text)
    )


def test_quantile_interpolates_like_promql() -> None:
    b = {0.1: 10.0, 0.5: 20.0, 1.0: 20.0, math.inf: 20.0}
    assert hist.quantile(0.5, b) == 0.1
    assert abs(hist.quantile(0.99, b) - 0.492) < 1e-9
    assert hist.quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert hist.quantile(0.99, {0.1: 0.0, 1.0: 0.0, math.inf: 5.0}) == 1.0  # past the last bound


def test_delta_and_reset() -> None:
    assert hist.delta({1.0: 5, math.inf: 5}, {1.0: 7, math.inf: 9}) == {1.0: 2, math.inf: 4}
    assert hist.delta({1.0: 5, math.inf: 5}, {1.0: 1, math.inf: 1}) == {1.0: 1, math.inf: 1}


def test_vllm_view_over_the_interval() -> None:
    v = compute(scrape_of(VLLM_1, 10.0), scrape_of(VLLM_2, 12.0))
    assert v.kind == "vllm" and v.interval_s == 2.0
    assert (v.requests_running, v.requests_waiting, v.kv_cache_usage) == (3, 7, 0.5)
    assert v.tokens_out_per_s == 250 and v.tokens_in_per_s == 0 and v.requests_per_s == 4
    assert v.errors_per_s == 0
    # the 10 first tokens of this interval all fell in (0.1, 0.5]: not the 10 fast ones from before
    assert 100 < v.ttft_p50_ms < 500 and v.ttft_p99_ms > v.ttft_p50_ms
    assert "itl_p50_ms" in v.unavailable  # this server has no inter-token histogram


def test_first_scrape_gives_levels_but_no_rates() -> None:
    v = compute(Scrape(url="http://x:1"), scrape_of(VLLM_1, 1.0))
    assert v.requests_running == 3 and v.tokens_out_per_s is None and v.interval_s is None


def test_endpoint_without_metrics_says_so() -> None:
    cur = Scrape(
        url="http://x:1", t=1, reachable=True, health_status=404, metrics_status=404, models=["smollm2"]
    )
    v = compute(Scrape(url="http://x:1"), cur)
    assert v.kind == "unknown" and not v.has_metrics and v.healthy is True
    assert v.unavailable["ttft_p99_ms"] == NO_METRICS and "llama-cpp-python" in NO_METRICS


def test_llamacpp_view() -> None:
    a = "llamacpp:requests_processing 1\nllamacpp:requests_deferred 2\nllamacpp:tokens_predicted_total 100\n"
    b = a.replace("tokens_predicted_total 100", "tokens_predicted_total 160")
    v = compute(scrape_of(a, 0), scrape_of(b, 2))
    assert v.kind == "llamacpp" and v.requests_waiting == 2 and v.tokens_out_per_s == 30
    assert "no latency histograms" in v.unavailable["ttft_p99_ms"]


def test_root_of() -> None:
    assert root_of("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert root_of("127.0.0.1:4000") == "http://127.0.0.1:4000"
    assert root_of("http://u:p@h:1/v1") == "http://h:1"
