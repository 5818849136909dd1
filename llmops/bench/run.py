"""One bench from a resolved config: prepare, warm up, drive each load point, count tokens, gate."""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmops.bench.client import StreamingClient, build_request
from llmops.bench.endpoints import Endpoint, server_root
from llmops.bench.metrics import DEFINITIONS, Sample, cost_per_1k, summarize
from llmops.bench.prom import Scraper
from llmops.bench.result import BenchConfig, BenchResult, Environment, RunMetrics
from llmops.bench.runner import LoadPlan, run_load
from llmops.bench.schedule import arrival_offsets, arrivals_within
from llmops.bench.slo import Check, check_slos, compare_baseline, per_request_limits
from llmops.bench.sse import Record
from llmops.bench.workload import WORDS_PER_TOKEN, Prompt, Tokenizer, load_prompts
from llmops.errors import OperationFailed, UsageError
from llmops.progress import ProgressReporter
from llmops.steal import StealMeter

CLIENT = "llmops raw-asyncio HTTP/1.1 streaming client (one process, keep-alive pool sized to concurrency)"


@dataclass
class Point:
    """One measured load point: its figures and its per-request samples (for the HTML report)."""

    metrics: Any  # RunMetrics
    samples: list[Sample]
    checks: list[Check]
    passed: bool


@dataclass
class Prices:
    input_per_1m: float
    output_per_1m: float
    note: str


def environment() -> Environment:
    from llmops import __version__

    return Environment(
        llmops=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        event_loop="asyncio",
        client=CLIENT,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _usage(endpoint: str, rec: Record) -> tuple[int | None, int | None]:
    """(input, output) tokens the server reported, from the kept usage payloads."""
    n_in = n_out = None
    for raw in rec.usage_payloads:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if endpoint == "anthropic":
            usage = (doc.get("message") or {}).get("usage") or doc.get("usage") or {}
            n_in = usage.get("input_tokens", n_in)
            if doc.get("type") == "message_delta":
                n_out = usage.get("output_tokens", n_out)
        else:
            usage = doc.get("usage") or {}
            n_in = usage.get("prompt_tokens", n_in)
            n_out = usage.get("completion_tokens", n_out)
    return n_in, n_out


def _text(endpoint: str, payloads: Sequence[bytes]) -> str:
    parts = []
    for raw in payloads:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if endpoint == "anthropic":
            parts.append((doc.get("delta") or {}).get("text") or "")
        else:
            for ch in doc.get("choices") or []:
                if endpoint == "chat":
                    d = ch.get("delta") or {}
                    parts.append(
                        (d.get("content") or "") + (d.get("reasoning_content") or d.get("reasoning") or "")
                    )
                else:
                    parts.append(ch.get("text") or "")
    return "".join(parts)


def to_samples(
    endpoint: str, records: Sequence[Record], prompts: Sequence[Prompt], tokenizer: Tokenizer | None
) -> tuple[list[Sample], str, str]:
    """Per-request samples, and where output and input token counts came from (weakest source used)."""
    out_rank = {"usage": 0, "tokenizer": 1, "chunks": 2}
    in_rank = {"usage": 0, "tokenizer": 1, "estimate": 2}
    out_src, in_src = "usage", "usage"
    samples = []
    for rec in records:
        if rec.error is not None:
            samples.append(Sample(ok=False, error=rec.error, lag=rec.lag))
            continue
        n_in, n_out = _usage(endpoint, rec)
        src = "usage"
        if n_out is None:
            if tokenizer is not None and rec.content_payloads is not None:
                n_out, src = len(tokenizer.encode(_text(endpoint, rec.content_payloads))), "tokenizer"
            else:
                n_out, src = len(rec.content_times), "chunks"
        out_src = max(out_src, src, key=out_rank.__getitem__)
        isrc = "usage"
        if n_in is None:
            prompt = prompts[rec.index]
            if prompt.input_tokens is not None:
                n_in, isrc = prompt.input_tokens, "tokenizer"
            else:
                n_in, isrc = round(len(prompt.text.split()) / WORDS_PER_TOKEN), "estimate"
        in_src = max(in_src, isrc, key=in_rank.__getitem__)
        times = rec.content_times
        samples.append(
            Sample(
                ok=True,
                ttft=times[0] - rec.t_send,
                e2el=rec.t_end - rec.t_send,
                itls=[b - a for a, b in itertools.pairwise(times)],
                output_tokens=n_out,
                input_tokens=n_in,
                lag=rec.lag,
            )
        )
    return samples, out_src, in_src


def _plan(
    cfg: BenchConfig, requests: list[bytes], rate: float, concurrency: int | None, keep_text: bool
) -> LoadPlan:
    if cfg.duration:
        if math.isinf(rate) and not concurrency:
            raise UsageError(
                "--duration with an unlimited request rate needs a cap",
                hint="add --max-concurrency N or a --request-rate",
            )
        offsets = None if math.isinf(rate) else arrivals_within(cfg.duration, rate, cfg.burstiness, cfg.seed)
        return LoadPlan(requests, offsets, concurrency, None, cfg.duration, keep_text)
    offsets = None if math.isinf(rate) else arrival_offsets(cfg.num_prompts, rate, cfg.burstiness, cfg.seed)
    return LoadPlan(requests, offsets, concurrency, cfg.num_prompts, None, keep_text)


def _load_points(cfg: BenchConfig) -> list[tuple[float, int | None]]:
    if not cfg.sweep:
        return [(cfg.rate, cfg.max_concurrency)]
    if cfg.sweep_of == "rate":
        return [(float(v), cfg.max_concurrency) for v in cfg.sweep]
    return [(cfg.rate, int(v)) for v in cfg.sweep]


def run_bench(
    cfg: BenchConfig,
    *,
    api_key: str | None = None,
    tokenizer: Tokenizer | None = None,
    prices: Prices | None = None,
    baseline: dict[str, Any] | None = None,
    progress: ProgressReporter | None = None,
) -> tuple[BenchResult, list[Point]]:
    endpoint = Endpoint(cfg.endpoint, cfg.target)
    prompts = load_prompts(
        cfg.dataset,
        n=cfg.num_prompts,
        input_len=cfg.input_len,
        output_len=cfg.output_len,
        default_output_len=cfg.output_len or 128,
        prefix_len=cfg.prefix_len,
        seed=cfg.seed,
        tokenizer=tokenizer,
    )
    headers = endpoint.headers(api_key)
    addr = StreamingClient(cfg.target, timeout=cfg.timeout_s)
    requests = [
        build_request(addr, endpoint.path, endpoint.body(p, cfg.model, cfg.sampling, cfg.ignore_eos), headers)
        for p in prompts
    ]
    del addr
    limits = per_request_limits(cfg.slos)
    points: list[Point] = []
    keep_text = True
    for i, (rate, conc) in enumerate(_load_points(cfg)):
        warmup = requests[: cfg.warmup] if i == 0 else []
        scraper = Scraper(server_root(cfg.target) + "/metrics") if cfg.endpoint != "anthropic" else None
        has_metrics = scraper.start() if scraper else False
        steal = StealMeter()
        outcome, warm = run_load(
            cfg.target,
            endpoint.scanner(),
            _plan(cfg, requests, rate, conc, keep_text),
            timeout=cfg.timeout_s,
            progress=progress,
            warmup=warmup,
        )
        server = scraper.stop() if scraper and has_metrics else None
        host_steal = steal.share()
        steal.close()
        if warm and all(r.error is not None for r in warm):
            bad = warm[0]
            raise OperationFailed(
                f"the target failed the warmup request ({bad.error}: {bad.detail})",
                hint="check --target, --model and --endpoint (or use --warmup 0 to skip this check)",
            )
        if warm and any(r.usage_payloads for r in warm if r.error is None):
            keep_text = False  # the server reports usage: no need to keep text for counting
        samples, out_src, in_src = to_samples(cfg.endpoint, outcome.records, prompts, tokenizer)
        figures = summarize(samples, outcome.duration, limits)
        load = f"concurrency {conc or 'unlimited'}, rate {'inf' if math.isinf(rate) else f'{rate:g}/s'}"
        cost = None
        if prices is not None:
            cost = cost_per_1k(
                figures["mean_input_tokens"],
                figures["mean_output_tokens"],
                prices.input_per_1m,
                prices.output_per_1m,
            )
        examples: dict[str, str] = {}
        for r in outcome.records:
            if r.error and r.error not in examples:
                examples[r.error] = (r.detail or "")[:200]
        metrics = RunMetrics(
            load=load,
            max_concurrency=conc,
            request_rate="inf" if math.isinf(rate) else rate,
            connections_opened=outcome.connections,
            host_steal_share=host_steal,
            output_tokens_from=out_src,
            input_tokens_from=in_src,
            cost_per_1k_requests=cost,
            cost_note=prices.note if prices else "no provider prices for this model",
            server_metrics=server,
            error_examples=examples,
            **figures,
        )
        checks = check_slos(cfg.slos, figures)
        if "error_rate" not in {c.key for c in checks} and figures["failed"]:
            checks.append(
                Check(
                    name="no failed requests (no error_rate SLO given)",
                    key="failed",
                    op="<=",
                    limit=0,
                    actual=figures["failed"],
                    passed=False,
                    excess=figures["failed"],
                )
            )
        if not figures["completed"]:
            checks.append(
                Check(
                    name="completed requests",
                    key="completed",
                    op=">=",
                    limit=1,
                    actual=0,
                    passed=False,
                    excess=-1,
                )
            )
        points.append(Point(metrics, samples, checks, all(c.passed for c in checks)))

    last = points[-1]
    baseline_checks = (
        compare_baseline(last.metrics.model_dump(), baseline, cfg.max_regression or 0.0)
        if baseline is not None
        else []
    )
    if cfg.sweep:
        good = [p for p in points if p.passed]
        passed = bool(good) and all(c.passed for c in baseline_checks)
        verdict = (
            f"highest load meeting every SLO: {good[-1].metrics.load}"
            if good
            else "no load point met every SLO"
        )
    else:
        passed = last.passed and all(c.passed for c in baseline_checks)
        broken = [c for c in [*last.checks, *baseline_checks] if not c.passed]
        verdict = "all checks passed" if not broken else "broken: " + "; ".join(c.describe() for c in broken)
    result = BenchResult(
        **last.metrics.model_dump(),
        config=cfg,
        environment=environment(),
        definitions=DEFINITIONS,
        sweep=[p.metrics for p in points] if cfg.sweep else None,
        slo_checks=last.checks,
        baseline_checks=baseline_checks,
        passed=passed,
        verdict=verdict,
    )
    return result, points
