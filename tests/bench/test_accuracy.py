"""The client measures what the server does: known TTFT (50 ms) and gap (10 ms) at concurrency 1 and 64."""

from __future__ import annotations

import pytest

from llmops.bench.config import BenchFlags, resolve
from llmops.bench.run import run_bench
from llmops.profiles.loader import Catalog
from llmops.workspace import Workspace


def _bench(target: str, **kw):
    flags = BenchFlags(target=target, model="fake-model", **kw)
    resolved = resolve(flags, Workspace(), Catalog.discover())
    return run_bench(resolved.config)


@pytest.mark.parametrize(("concurrency", "n"), [(1, 20), (64, 256)])
def test_ttft_and_itl_match_the_server(fake_server, concurrency: int, n: int) -> None:
    base = fake_server(ttft_ms=50, gap_ms=10, tokens=16)
    result, _points = _bench(base, num_prompts=n, max_concurrency=concurrency)
    assert result.completed == n and result.failed == 0
    assert abs(result.median_ttft_ms - 50.0) < 3.0, result.median_ttft_ms
    assert abs(result.mean_itl_ms - 10.0) < 0.5, result.mean_itl_ms
    assert result.output_tokens_from == "usage" and result.mean_output_tokens == 16
    # TPOT is (E2E - TTFT) / (tokens - 1): the gap, when the stream is on time
    assert abs(result.median_tpot_ms - 10.0) < 1.0
    assert result.connections_opened == concurrency


def test_anthropic_stream_is_measured_too(fake_server, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
    base = fake_server(ttft_ms=50, gap_ms=10, tokens=12)
    flags = BenchFlags(
        target=base, model="claude-haiku-4-5", endpoint="anthropic", num_prompts=8, max_concurrency=4
    )
    resolved = resolve(flags, Workspace(), Catalog.discover())
    result, _ = run_bench(resolved.config, api_key=resolved.api_key, prices=resolved.prices)
    assert result.completed == 8, result.errors
    assert abs(result.median_ttft_ms - 50.0) < 3.0
    assert result.mean_output_tokens == 12 and result.output_tokens_from == "usage"
    assert result.input_tokens_from == "usage"
    # haiku 4.5 list prices: $1 in, $5 out per 1M tokens
    expected = 1000 * (result.mean_input_tokens * 1.0 + 12 * 5.0) / 1e6
    assert result.cost_per_1k_requests == pytest.approx(expected)
    assert "sk-ant-test-secret" not in result.model_dump_json()


def test_rate_schedule_is_kept(fake_server) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    result, _ = _bench(base, num_prompts=40, request_rate="100", seed=3)
    assert result.completed == 40
    # 40 Poisson arrivals at 100/s take about 0.4 s; the client never fell behind its schedule
    assert 0.2 < result.duration < 0.9
    assert result.max_schedule_lag_ms < 20
