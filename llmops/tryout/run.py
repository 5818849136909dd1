"""Run a resolved `try`: serve the model if asked, stream every answer, and measure each one.

Answers run one after another on one keep-alive connection, so each streams whole and its timings are its
own. Ctrl-C (KeyboardInterrupt) cancels the request in flight: the connection is closed at once, which is
how the server learns to stop generating, and the text that arrived so far is kept in the result.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Protocol

from llmops.batch.cost import price
from llmops.bench.client import StreamingClient, build_request
from llmops.bench.endpoints import Endpoint, normalize_target
from llmops.bench.workload import Prompt
from llmops.progress import ProgressReporter
from llmops.sampling.dialects import wire_fields
from llmops.sampling.diversity import Diversity, diversity
from llmops.settings import dry_run_document
from llmops.tryout.config import TryPlan, Variant
from llmops.tryout.stream import Answer, EventReader, TokenLogprob, header_values


class TryObserver(Protocol):
    """What a caller sees while a try runs (the CLI prints; the tests and --json pass None)."""

    def answer_start(self, run: int, answer: int, total: int) -> None: ...

    def piece(self, text: str, tokens: list[TokenLogprob]) -> None: ...

    def answer_end(self, answer: Answer) -> None: ...


@dataclass
class Run:
    """One setting's answers."""

    variant: Variant
    body: dict[str, Any]
    answers: list[Answer] = field(default_factory=list)

    @property
    def diversity(self) -> Diversity:
        return diversity([a.text for a in self.answers if a.ok])

    def fingerprints(self) -> list[str]:
        return sorted({a.system_fingerprint for a in self.answers if a.system_fingerprint})


@dataclass
class TryResult:
    model: str
    target: str
    served_by_llmops: bool
    runs: list[Run]
    interrupted: bool = False


def request_body(plan: TryPlan, variant: Variant, model: str) -> dict[str, Any]:
    """The exact body sent for one setting (bench's request builder, then the dialect's field names)."""
    values = variant.sent()
    max_tokens = int(values.pop("max_tokens"))
    endpoint = Endpoint(plan.dialect.endpoint, "http://unused/v1")  # the body does not depend on the URL
    prompt = Prompt(text=plan.messages[-1]["content"], messages=plan.messages, output_len=max_tokens)
    body = endpoint.body_dict(prompt, model, values, ignore_eos=False)
    if plan.dialect.endpoint == "chat":
        renamed = wire_fields(plan.dialect, {k: body.pop(k) for k in list(body) if k in plan.dialect.renames})
        body.update(renamed)
        if plan.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = plan.logprobs
    return body


@contextmanager
def _endpoint(plan: TryPlan, serve_progress: ProgressReporter | None) -> Iterator[tuple[str, str]]:
    """(base URL, model name) to send to; with no target, the model profile served for the duration."""
    if plan.needs_server:
        from llmops.serve import running

        with running(
            plan.model_profile.profile,
            plan.node_profile.profile,
            progress=serve_progress,
            interrupt_on_death=True,
        ) as ep:
            yield normalize_target(ep.base_url, plan.dialect.endpoint), plan.model or ep.model
        return
    assert plan.target is not None
    if plan.model:
        yield plan.target, plan.model
        return
    from llmops.bench.config import discover_model

    yield plan.target, discover_model(plan.target)


def try_prompt(
    plan: TryPlan,
    observer: TryObserver | None = None,
    *,
    serve_progress: ProgressReporter | None = None,
) -> TryResult:
    """Every answer the plan asks for; on Ctrl-C, what arrived so far with `interrupted` set."""
    with _endpoint(plan, serve_progress) as (target, model):
        runs = [Run(v, request_body(plan, v, model)) for v in plan.variants]
        result = TryResult(model, target, plan.needs_server, runs)
        try:
            asyncio.run(_all(plan, target, result, observer))
        except KeyboardInterrupt:  # the answer in flight was cancelled (and marked) by _one
            result.interrupted = True
        return result


async def _all(plan: TryPlan, target: str, result: TryResult, observer: TryObserver | None) -> None:
    endpoint = Endpoint(plan.dialect.endpoint, target)
    client = StreamingClient(target, timeout=plan.timeout)
    headers = endpoint.headers(plan.api_key)
    try:
        for r, run in enumerate(result.runs):
            raw = build_request(client, endpoint.path, json.dumps(run.body).encode(), headers)
            for i in range(plan.answers_per_variant):
                if observer is not None:
                    observer.answer_start(r, i, plan.answers_per_variant)
                answer = Answer(logprobs_asked=plan.logprobs is not None)
                run.answers.append(answer)
                try:
                    await _one(client, endpoint, raw, answer, observer, plan)
                finally:  # a cancelled answer still gets its status line
                    if observer is not None:
                        observer.answer_end(answer)
    finally:
        client.close()


async def _one(
    client: StreamingClient,
    endpoint: Endpoint,
    raw: bytes,
    answer: Answer,
    observer: TryObserver | None,
    plan: TryPlan,
) -> None:
    reader = EventReader(endpoint.kind, answer, observer)
    t0 = perf_counter()
    try:
        rec = await client.request(raw, endpoint.scanner(), on_event=reader)
    except asyncio.CancelledError:
        answer.cancelled = True
        _timings(answer, t0, perf_counter())
        _count(answer)
        raise
    answer.status = rec.status
    answer.gateway = header_values(rec.head)
    _timings(answer, rec.t_send, rec.t_end)
    if rec.error is not None and answer.error is None and not (rec.error == "empty" and answer.finish_reason):
        answer.error, answer.detail = rec.error, rec.detail
        if rec.error == "timeout":
            answer.detail = timeout_detail(answer, plan.timeout, rec.t_send, rec.t_end)
    elif answer.error is None and answer.finish_reason is None and not rec.done:
        answer.error, answer.detail = (
            "truncated",
            "the stream ended without a finish reason or its end marker",
        )
    _count(answer)
    if plan.prices is not None and answer.input_tokens is not None and answer.output_tokens is not None:
        p = plan.prices
        answer.cost_usd = price(
            answer.input_tokens,
            answer.output_tokens,
            input_per_1m=p.input_per_1m,
            output_per_1m=p.output_per_1m,
            discount=0.0,
        )
    if reader.failure is not None:
        raise reader.failure


def _timings(answer: Answer, t_send: float, t_end: float) -> None:
    """TTFT: sent -> first text piece; duration: sent -> last byte."""
    answer.duration_s = t_end - t_send
    if answer.piece_times:
        answer.ttft_s = answer.piece_times[0] - t_send


def _count(answer: Answer) -> None:
    """Output tokens: the server's usage, else one per logprob entry, else one per streamed piece.

    Tokens/s is the decode rate: (tokens - 1) / (last piece - first piece), the time to first token apart.
    """
    if answer.output_tokens is not None:
        answer.output_tokens_from = "usage"
    elif answer.logprobs:
        answer.output_tokens, answer.output_tokens_from = len(answer.logprobs), "logprobs"
    else:
        answer.output_tokens, answer.output_tokens_from = len(answer.piece_times), "chunks"
    times = answer.piece_times
    if answer.output_tokens and answer.output_tokens > 1 and len(times) > 1 and times[-1] > times[0]:
        answer.tokens_per_s = (answer.output_tokens - 1) / (times[-1] - times[0])


def timeout_detail(answer: Answer, limit: float, t_send: float, t_end: float) -> str:
    """Which part ran out: the wait for the first token, a stall mid-answer, or an answer still streaming."""
    times = answer.piece_times
    if not times:
        return f"no first token within {limit:g}s (--timeout)"
    quiet = t_end - times[-1]
    if quiet >= min(5.0, limit / 4):
        return (
            f"the stream stalled: no token for {quiet:.1f}s after {len(times)} tokens, "
            f"until the {limit:g}s limit (--timeout)"
        )
    return f"still streaming after {limit:g}s ({len(times)} tokens so far): the answer outlasted --timeout"


def result_document(plan: TryPlan, result: TryResult) -> dict[str, Any]:
    """The --json document: what was asked, what was sent, and every answer with its figures."""
    runs = []
    for run in result.runs:
        d = run.diversity
        runs.append(
            {
                "label": run.variant.label,
                "parameters": run.variant.sent(),
                "request": {k: v for k, v in run.body.items() if k not in ("messages", "system")},
                "not_sent": run.variant.notes,
                "answers": [a.as_json() for a in run.answers],
                "diversity": {
                    "answers": d.answers,
                    "distinct_answers": d.distinct_answers,
                    "distinct_word_ratio": None
                    if d.distinct_word_ratio is None
                    else round(d.distinct_word_ratio, 4),
                    "identical": d.identical,
                },
                "system_fingerprints": run.fingerprints(),
            }
        )
    return dry_run_document(
        "try",
        plan.settings,
        model=result.model,
        target=result.target,
        dialect=plan.dialect.name,
        served_by_llmops=result.served_by_llmops,
        compare=plan.compare_param,
        messages=plan.messages,
        runs=runs,
        interrupted=result.interrupted,
    )
