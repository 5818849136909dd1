"""Job lifecycle: submit, resume, refresh, wait, cancel, results. Backends do the provider-specific work."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.batch.backends import get_backend
from llmops.batch.backends.base import JobContext
from llmops.batch.convert import usage_of
from llmops.batch.cost import estimate_tokens, price
from llmops.batch.models import TERMINAL, Counts, Job, RemotePart, RequestLine, Usage
from llmops.batch.parse import ParsedInput, parse_input
from llmops.batch.split import split_ranges
from llmops.batch.store import JobStore, new_job_id, write_jsonl
from llmops.errors import LlmopsError, OperationFailed, UsageError
from llmops.profiles.schema import ProviderProfile
from llmops.progress import NullProgress, ProgressReporter
from llmops.settings import Setting

REQUESTS_FILE = "requests.jsonl"
RESULTS_FILE = "results.jsonl"


@dataclass
class SubmitPlan:
    """Everything submit needs, each setting with where it came from (shown by --dry-run)."""

    input: Path
    provider: ProviderProfile
    backend: str
    settings: dict[str, Setting] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    name: str | None = None
    output: Path | None = None
    split: bool = True
    new: bool = False

    def value(self, key: str) -> Any:
        return self.settings[key].value


@dataclass
class Estimate:
    requests: int
    parts: int
    input_tokens: int
    output_tokens: int
    usd: float | None

    def as_dict(self) -> dict[str, Any]:
        from llmops.batch.cost import ESTIMATE_NOTE

        return {
            "requests": self.requests,
            "parts": self.parts,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usd": self.usd,
            "note": ESTIMATE_NOTE,
        }


def validate(plan: SubmitPlan) -> ParsedInput:
    """The whole file checked (exit 2 listing every bad line) before anything is sent."""
    return parse_input(
        plan.input,
        backend=plan.backend,
        limits=plan.provider.batch,
        model=plan.value("model"),
        sampling=plan.sampling,
        max_tokens=plan.max_tokens,
        split=plan.split,
    )


def prices_for(provider: ProviderProfile, model: str | None) -> tuple[float, float, float] | None:
    found = provider.model(model) if model else None
    if found is None:
        return None
    return (found.input_per_1m, found.output_per_1m, provider.batch.discount)


def estimate(plan: SubmitPlan, parsed: ParsedInput) -> Estimate:
    tokens_in = tokens_out = 0
    usd = 0.0
    known = True
    for request in parsed.requests:
        t_in, t_out = estimate_tokens(request.body)
        tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
        prices = prices_for(plan.provider, request.body.get("model"))
        if prices is None:
            known = False
        else:
            usd += price(t_in, t_out, input_per_1m=prices[0], output_per_1m=prices[1], discount=prices[2])
    parts = len(
        split_ranges(
            parsed.sizes,
            max_requests=plan.provider.batch.max_requests,
            max_bytes=plan.provider.batch.max_bytes,
        )
    )
    return Estimate(len(parsed.requests), parts, tokens_in, tokens_out, round(usd, 6) if known else None)


def submit(
    plan: SubmitPlan,
    parsed: ParsedInput,
    *,
    store: JobStore,
    wait: bool,
    on_created: Callable[[Job, bool], None] = lambda job, resumed: None,
    progress: ProgressReporter | None = None,
    poll_s: float = 30.0,
) -> Job:
    """Create the job (or pick up the unfinished one for the same file), then start it."""
    provider = plan.provider
    if not plan.new:
        for old in store.unfinished_for(parsed.sha256):
            if (old.backend, old.provider, old.model, old.base_url) == (
                plan.backend,
                provider.name,
                plan.value("model"),
                plan.value("base_url"),
            ):
                on_created(old, True)
                return resume(store, old.id, wait=wait, progress=progress, poll_s=poll_s)
    if plan.output is not None and plan.output.exists():
        raise UsageError(
            f"'{plan.output}' already exists; llmops never overwrites a file",
            hint="choose another --output path, or move that file away",
        )
    now = time.time()
    est = estimate(plan, parsed)
    job = Job(
        id=new_job_id(),
        name=plan.name,
        backend=plan.backend,
        provider=provider.name,
        model=plan.value("model"),
        input=str(plan.input.resolve()),
        input_hash=parsed.sha256,
        url=parsed.url,
        counts=Counts(total=len(parsed.requests)),
        base_url=plan.value("base_url"),
        api_key_env=provider.api_key_env,
        concurrency=plan.value("concurrency"),
        timeout_s=plan.value("timeout"),
        max_retries=plan.value("max_retries"),
        backoff_s=plan.value("backoff"),
        rpm=plan.value("rpm"),
        tpm=plan.value("tpm"),
        output=str(plan.output.resolve()) if plan.output else None,
        estimate_usd=est.usd,
        prices=prices_for(provider, plan.value("model")),
        created_at=now,
        updated_at=now,
    )
    ranges = split_ranges(
        parsed.sizes, max_requests=provider.batch.max_requests, max_bytes=provider.batch.max_bytes
    )
    if plan.backend != "local":
        job.parts = [RemotePart(index=i, first=first, size=size) for i, (first, size) in enumerate(ranges)]
    ctx = JobContext(store, job, parsed.requests, progress or NullProgress())
    ctx.api_key()  # a missing key fails before the job exists
    write_jsonl(store.job_dir(job.id) / REQUESTS_FILE, (r.model_dump(mode="json") for r in parsed.requests))
    store.save(job)
    on_created(job, False)
    return _start(ctx, wait=wait, poll_s=poll_s)


def _context(store: JobStore, job: Job, progress: ProgressReporter | None = None) -> JobContext:
    path = store.job_dir(job.id) / REQUESTS_FILE
    with path.open(encoding="utf-8") as fh:
        requests = [RequestLine.model_validate_json(line) for line in fh if line.strip()]
    return JobContext(store, job, requests, progress or NullProgress())


def _start(ctx: JobContext, *, wait: bool, poll_s: float) -> Job:
    backend = get_backend(ctx.job.backend)
    try:
        backend.start(ctx, wait=wait)
    except LlmopsError as exc:
        if ctx.job.backend != "local":  # some parts may be submitted: keep them, resume sends the rest
            ctx.job.state, ctx.job.error = "interrupted", exc.message
            ctx.save()
            exc.hint = (
                f"{exc.hint + '; then ' if exc.hint else ''}`llmops batch resume {ctx.job.id}` carries on"
            )
        raise
    ctx.job.error = None
    if wait:
        return wait_for(ctx, poll_s=poll_s)
    return refresh_context(ctx)


def resume(
    store: JobStore,
    job_id: str,
    *,
    wait: bool,
    progress: ProgressReporter | None = None,
    poll_s: float = 30.0,
) -> Job:
    """Carry on with a job: the local runner sends only what has not succeeded (failed requests of a
    finished local job included); remote parts not yet submitted are submitted; with wait, poll to the end."""
    job = store.get(job_id)
    ctx = _context(store, job, progress)
    if job.backend == "local" and job.state == "completed" and job.counts.failed:
        job.state, job.ended_at = "running", None  # run the failed requests again
        (store.job_dir(job.id) / RESULTS_FILE).unlink(missing_ok=True)
    if job.ended:
        return refresh_context(ctx)
    if job.backend == "local":
        from llmops.batch.backends.local import runner_alive

        if runner_alive(ctx) and job.worker_pid != _pid():
            return wait_for(ctx, poll_s=min(poll_s, 1.0)) if wait else refresh_context(ctx)
        if job.cancel_requested:
            get_backend("local").cancel(ctx)
            return refresh_context(ctx)
    return _start(ctx, wait=wait, poll_s=poll_s)


def _pid() -> int:
    import os

    return os.getpid()


def refresh(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    return refresh_context(_context(store, job))


def refresh_context(ctx: JobContext) -> Job:
    """Ask the backend where the job stands; once ended, finish it (results file, actual cost)."""
    was_ended = ctx.job.ended and (ctx.store.job_dir(ctx.job.id) / RESULTS_FILE).exists()
    get_backend(ctx.job.backend).refresh(ctx)
    if ctx.job.ended and not was_ended:
        _finish(ctx)
    return ctx.job


def wait_for(ctx: JobContext, *, poll_s: float) -> Job:
    """Poll until the job ends, reporting progress; for the local runner the run itself already ended."""
    backend = get_backend(ctx.job.backend)
    backend.refresh(ctx)
    job = ctx.job
    if not job.ended and job.state != "interrupted":
        progress = ctx.progress
        progress.start(job.counts.total, f"batch {job.id}")
        reported = 0
        while True:
            if job.counts.done > reported:
                progress.update(
                    job.counts.done - reported,
                    ok=job.counts.succeeded,
                    failed=job.counts.failed,
                    state=job.state,
                )
                reported = job.counts.done
            if job.ended or job.state == "interrupted":
                break
            time.sleep(poll_s)
            backend.refresh(ctx)
        progress.finish()
    if job.ended and not (ctx.store.job_dir(job.id) / RESULTS_FILE).exists():
        _finish(ctx)
    return job


def _finish(ctx: JobContext) -> None:
    """Write the merged results (input order) and the actual cost from the usage the results report."""
    job, store = ctx.job, ctx.store
    lines = list(store.result_lines(job.id))
    usage = Usage()
    for line in lines:
        p, c = usage_of(line)
        usage.input_tokens += p
        usage.output_tokens += c
    job.usage = usage
    if job.prices is not None:
        job.actual_usd = round(
            price(
                usage.input_tokens,
                usage.output_tokens,
                input_per_1m=job.prices[0],
                output_per_1m=job.prices[1],
                discount=job.prices[2],
            ),
            6,
        )
    job.counts = Counts(
        total=len(ctx.requests), succeeded=sum(ln.ok for ln in lines), failed=sum(not ln.ok for ln in lines)
    )
    job.ended_at = job.ended_at or time.time()
    docs = [ln.model_dump(mode="json") for ln in lines]
    write_jsonl(store.job_dir(job.id) / RESULTS_FILE, docs)
    if job.output:
        write_jsonl(Path(job.output), docs)
    store.save(job)


def cancel(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job.state in TERMINAL:
        raise UsageError(f"batch job {job.id} has already {job.state}", hint="nothing to cancel")
    ctx = _context(store, job)
    get_backend(job.backend).cancel(ctx)
    if ctx.job.ended:
        _finish(ctx)
    return ctx.job


def results_path(store: JobStore, job_id: str) -> tuple[Job, Path]:
    """The merged results file of an ended job (refreshing a remote job first)."""
    job = refresh(store, job_id)
    path = store.job_dir(job.id) / RESULTS_FILE
    if not job.ended or not path.exists():
        hint = (
            f"`llmops batch resume {job.id}` carries on with it"
            if job.state == "interrupted"
            else f"`llmops batch status {job.id}` shows its progress"
        )
        raise OperationFailed(f"batch job {job.id} is {job.state}; results come once it ends", hint=hint)
    return job, path


def list_jobs(store: JobStore) -> list[Job]:
    """Every job, local states refreshed cheaply (remote jobs are refreshed by `status ID`)."""
    jobs = store.all()
    out = []
    for job in jobs:
        if job.backend == "local" and job.state in ("running", "cancelling"):
            job = refresh_context(_context(store, job))
        out.append(job)
    return out
