"""Pure pieces: percentiles, summaries, SLOs, baseline maths, schedules, SSE scanning, Prometheus, prompts."""

from __future__ import annotations

import itertools
import json
import math
import statistics

import pytest

from llmops.bench.endpoints import Endpoint, normalize_target, server_root
from llmops.bench.metrics import Sample, cost_per_1k, describe, percentile, summarize
from llmops.bench.prom import parse
from llmops.bench.prom import summarize as prom_summary
from llmops.bench.schedule import arrival_offsets, arrivals_within
from llmops.bench.slo import check_slos, compare_baseline, parse_slo, per_request_limits, slo_key
from llmops.bench.sse import AnthropicScanner, ChatScanner, CompletionsScanner, Record
from llmops.bench.workload import random_prompts
from llmops.errors import UsageError


def test_percentile_matches_numpy_linear() -> None:
    v = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(v, 50) == 3.0
    assert percentile(v, 90) == pytest.approx(7.6)  # numpy.percentile(v, 90)
    assert percentile([5.0], 99) == 5.0
    d = describe([3.0, 1.0, 2.0])
    assert (
        d["median"] == 2.0 and d["min"] == 1.0 and d["max"] == 3.0 and d["std"] == pytest.approx(0.8165, 1e-3)
    )
    assert describe([])["p99"] is None


def test_summary_definitions() -> None:
    s = [
        Sample(ok=True, ttft=0.1, e2el=0.5, itls=[0.1] * 4, output_tokens=5, input_tokens=10),
        Sample(ok=True, ttft=0.3, e2el=0.7, itls=[0.2, 0.2], output_tokens=3, input_tokens=20),
        Sample(ok=False, error="timeout"),
    ]
    out = summarize(s, 2.0, {"ttft": 200})
    assert out["completed"] == 2 and out["failed"] == 1 and out["errors"] == {"timeout": 1}
    assert out["error_rate"] == pytest.approx(1 / 3)
    assert out["request_throughput"] == 1.0 and out["output_throughput"] == 4.0
    assert out["total_token_throughput"] == 19.0
    assert out["request_goodput"] == 0.5  # only the first meets ttft <= 200 ms
    assert out["mean_ttft_ms"] == pytest.approx(200) and out["median_ttft_ms"] == pytest.approx(200)
    assert out["mean_tpot_ms"] == pytest.approx((100 + 200) / 2)  # (0.4/4, 0.4/2)
    assert out["mean_itl_ms"] == pytest.approx(statistics.mean([100] * 4 + [200] * 2))
    assert cost_per_1k(1000, 100, 3.0, 15.0) == pytest.approx(4.5)


def test_slo_names_and_checks() -> None:
    assert slo_key("ttft_p99_ms") == ("p99_ttft_ms", "<=")
    assert slo_key("p99_ttft_ms") == ("p99_ttft_ms", "<=")
    assert slo_key("e2e_p50_ms") == ("median_e2el_ms", "<=")
    assert slo_key("request_throughput") == ("request_throughput", ">=")
    with pytest.raises(UsageError):
        slo_key("ttft_p42_ms")
    with pytest.raises(UsageError):
        parse_slo("error_rate")
    assert parse_slo("error_rate=0.01") == ("error_rate", 0.01)
    checks = check_slos(
        {"ttft_p99_ms": 500, "error_rate": 0.01, "output_throughput": 100},
        {"p99_ttft_ms": 612.0, "error_rate": 0.0, "output_throughput": 50.0},
    )
    by = {c.name: c for c in checks}
    assert not by["ttft_p99_ms"].passed and by["ttft_p99_ms"].excess == pytest.approx(112)
    assert by["ttft_p99_ms"].excess_pct == pytest.approx(22.4)
    assert by["error_rate"].passed and not by["output_throughput"].passed
    assert "BROKEN" in by["ttft_p99_ms"].describe() and "+22.4%" in by["ttft_p99_ms"].describe()
    assert per_request_limits({"ttft_p99_ms": 500, "ttft_median_ms": 200, "itl_p99_ms": 5}) == {"ttft": 200}


def test_baseline_directions() -> None:
    old = {"median_ttft_ms": 100.0, "request_throughput": 10.0, "error_rate": 0.0}
    ok = compare_baseline({"median_ttft_ms": 109.0, "request_throughput": 9.5, "error_rate": 0.0}, old, 10)
    assert all(c.passed for c in ok) and len(ok) == 3
    bad = compare_baseline({"median_ttft_ms": 111.0, "request_throughput": 8.9, "error_rate": 0.2}, old, 10)
    assert [c.passed for c in bad] == [False, False, False]


def test_arrivals() -> None:
    assert arrival_offsets(3, math.inf) == [0.0, 0.0, 0.0]
    offs = arrival_offsets(20000, 100.0, 1.0, seed=1)
    gaps = [b - a for a, b in itertools.pairwise(offs)]
    assert statistics.mean(gaps) == pytest.approx(0.01, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(0.01, rel=0.05)  # exponential: sd == mean
    bursty = arrival_offsets(20000, 100.0, 0.25, seed=1)
    bgaps = [b - a for a, b in itertools.pairwise(bursty)]
    assert statistics.stdev(bgaps) == pytest.approx(0.02, rel=0.08)  # gamma shape k: cv = 1/sqrt(k)
    assert arrival_offsets(5, 10.0, seed=7) == arrival_offsets(5, 10.0, seed=7)
    within = arrivals_within(2.0, 50.0)
    assert max(within) < 2.0 and 60 < len(within) < 140


def test_sse_scanners_classify_without_parsing() -> None:
    rec = Record()
    body = (
        b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
        b'data: {"choices":[{"delta":{"content": "Hi"}}],"usage":null}\n\n'
        b'data: {"choices":[{"delta":{"reasoning_content":"hmm"}}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
        b"data: [DONE]\n\npartial"
    )
    tail = ChatScanner().feed(rec, body, 1.0)
    assert tail == b"partial" and rec.content_times == [1.0, 1.0] and rec.done
    assert (
        len(rec.usage_payloads) == 1 and json.loads(rec.usage_payloads[0])["usage"]["completion_tokens"] == 2
    )
    rec = Record()
    CompletionsScanner().feed(
        rec, b'data: {"choices":[{"text":""}]}\n\ndata: {"choices":[{"text":"a"}]}\n\n', 2.0
    )
    assert rec.content_times == [2.0]
    rec = Record()
    ChatScanner().feed(rec, b'data: {"error":{"message":"boom"}}\n\n', 0.0)
    assert rec.error == "stream_error" and "boom" in (rec.detail or "")
    rec = Record()
    AnthropicScanner().feed(
        rec,
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
        b'{"input_tokens":5}}}\n\nevent: content_block_delta\ndata: {"type":'
        b'"content_block_delta","delta":{"type":"text_delta","text":"x"}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
        3.0,
    )
    assert rec.content_times == [3.0] and rec.done and len(rec.usage_payloads) == 1


def test_prometheus_view() -> None:
    before = parse(
        '# HELP x\nvllm:prefix_cache_queries_total{model_name="m"} 100\n'
        'vllm:prefix_cache_hits_total{model_name="m"} 10\nvllm:num_requests_running{a="b"} 0\n'
        "vllm:time_to_first_token_seconds_sum 1.0\nvllm:time_to_first_token_seconds_count 10\n"
    )
    during = [parse('vllm:num_requests_running{a="b"} 7\nvllm:gpu_cache_usage_perc 0.8\n')]
    after = parse(
        'vllm:prefix_cache_queries_total{model_name="m"} 300\nvllm:prefix_cache_hits_total{model_name="m"}'
        " 110\nvllm:num_requests_running 0\nvllm:time_to_first_token_seconds_sum 3.0\n"
        "vllm:time_to_first_token_seconds_count 20\n"
    )
    m = prom_summary(before, during, after, "x")
    assert m.running_peak == 7 and m.kv_cache_usage_peak == 0.8
    assert m.prefix_cache_hit_rate == pytest.approx(0.5) and m.server_mean_ttft_ms == pytest.approx(200)


def test_targets_and_bodies() -> None:
    assert normalize_target("http://u:p@h:8000/", "chat") == "http://h:8000/v1"
    assert normalize_target("http://h:8000/v1/", "completions") == "http://h:8000/v1"
    assert normalize_target("https://api.anthropic.com/v1", "anthropic") == "https://api.anthropic.com"
    assert server_root("http://h:8000/v1") == "http://h:8000"
    p = random_prompts(1, 32, 16)[0]
    chat = Endpoint("chat", "http://h/v1").body_dict(p, "m", {"temperature": 0.2, "stop": ["x"]}, True)
    assert (
        chat["stream_options"] == {"include_usage": True} and chat["ignore_eos"] and chat["max_tokens"] == 16
    )
    assert chat["temperature"] == 0.2 and chat["messages"][0]["content"] == p.text
    an = Endpoint("anthropic", "https://api.anthropic.com").body_dict(
        p, "claude", {"stop": ["x"], "seed": 1}, True
    )
    assert an["stop_sequences"] == ["x"] and "seed" not in an and "ignore_eos" not in an and an["stream"]
    assert Endpoint("anthropic", "https://api.anthropic.com").path == "/v1/messages"


def test_random_prompts_are_distinct_and_share_only_the_prefix() -> None:
    ps = random_prompts(50, 100, 8, prefix_len=40, seed=1)
    assert len({p.text for p in ps}) == 50
    first_words = {" ".join(p.text.split()[:30]) for p in ps}
    assert len(first_words) == 1  # the shared prefix (about 30 words for 40 tokens)
    with pytest.raises(UsageError):
        random_prompts(1, 10, 8, prefix_len=20)


def test_profile_sampling_goes_out_under_the_engines_field_names() -> None:
    """llama-cpp-python's server ignores `repetition_penalty`: a llama.cpp profile's value goes as
    `repeat_penalty`."""
    import os
    from pathlib import Path

    from llmops.bench.config import BenchFlags, resolve
    from llmops.bench.workload import Prompt
    from llmops.profiles.loader import Catalog
    from llmops.workspace import Workspace

    shipped = Path(__file__).resolve().parents[2] / "configs" / "models" / "smollm2.yaml"
    models = Path(os.environ["LLMOPS_CONFIG_DIR"]) / "profiles" / "models"
    models.mkdir(parents=True)
    text = shipped.read_text().replace("name: smollm2\naliases: [smollm2-135m, smollm]", "name: tuned")
    (models / "tuned.yaml").write_text(
        text.replace("  top_p: 0.9", "  top_p: 0.9\n  repetition_penalty: 1.1\n  top_k: 40")
    )
    flags = BenchFlags(model_ref="tuned", target="http://127.0.0.1:9/v1", model="m")
    cfg = resolve(flags, Workspace(), Catalog.discover()).config
    assert cfg.sampling == {"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1, "top_k": 40}
    body = json.loads(Endpoint("chat", cfg.target).body(Prompt("hi", output_len=4), "m", cfg.sampling, False))
    assert body["repeat_penalty"] == 1.1 and "repetition_penalty" not in body and body["top_k"] == 40
    assert resolve(flags, Workspace(), Catalog.discover()).notes == []

    # The OpenAI API takes neither: both left out, each said in a note (the try command's rule).
    openai = BenchFlags(model_ref="tuned", target="http://127.0.0.1:9/v1", model="m", provider="openai")
    settings = resolve(openai, Workspace(), Catalog.discover())
    assert settings.config.sampling == {"temperature": 0.2, "top_p": 0.9}
    assert settings.notes == [
        "top_k 40 (from model profile tuned) not sent: the OpenAI API does not support it",
        "repetition_penalty 1.1 (from model profile tuned) not sent: the OpenAI API does not support it",
    ]


def test_server_view_reads_speculative_acceptance_and_prefix_hits() -> None:
    """vLLM 0.32's counter names, as its live /metrics shows them (tests/vllm)."""
    server_view = prom_summary
    before = parse(
        'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 12.0\n'
        'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 10.0\n'
        'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100.0\n'
        'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 0.0\n'
    )
    after = parse(
        'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 42.0\n'
        'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 31.0\n'
        'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1100.0\n'
        'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 768.0\n'
    )
    view = server_view(before, [], after, "http://x/metrics")
    assert view.spec_decode_acceptance_rate == 21 / 30
    assert view.prefix_cache_hit_rate == 768 / 1000
    assert server_view(after, [], after, "s").spec_decode_acceptance_rate is None  # no drafts in the run
