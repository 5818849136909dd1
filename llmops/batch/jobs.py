"""Job lifecycle: submit, resume, inspect, wait, cancel, results. Backends do the provider-specific work.

One owner per job at a time (`llmops.batch.lock`): the owner runs or polls the job and alone saves its
record. A command that finds the job owned by another process waits for it (with --wait; if that process
dies, the waiting one carries the job on), or shows the stored record and names the owner's pid.
"""

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
from llmops.batch.lock import JobLock, exclusive
from llmops.batch.models import Counts, Job, RemotePart, Usage
from llmops.batch.parse import ParsedInput, parse_input
from llmops.batch.split import split_ranges
from llmops.batch.store import JobStore, new_job_id, write_jsonl
from llmops.errors import LlmopsError, OperationFailed, UsageError
from llmops.output import check_output_file, staged_file
from llmops.profiles.schema import ProviderProfile
from llmops.progress import NullProgress, ProgressReporter
from llmops.prompts import RequestLine
from llmops.settings import Resolved

REQUESTS_FILE = "requests.jsonl"
RESULTS_FILE = "results.jsonl"
ATTACH_POLL_S = 1.0
Notice = Callable[[str], None]


def _quiet(text: str) -> None:
    pass


class Interrupted(LlmopsError):
    """Ctrl-C (or SIGTERM) stopped the command; the job is kept and can be carried on."""

    exit_code = 130


@dataclass
class SubmitPlan:
    """Everything submit needs, each setting with where it came from (shown by --dry-run)."""

    input: Path
    provider: ProviderProfile
    backend: str
    settings: Resolved = field(default_factory=Resolved)
    sampling: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    name: str | None = None
    output: Path | None = None
    force: bool = False
    split: bool = True
    new: bool = False
    credentials: str | None = None  # user:pass from the base URL, kept in memory only

    def value(self, key: str) -> Any:
        return self.settings.value(key)


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


# --- starting and carrying on ------------------------------------------------------------------


@dataclass
class Run:
    """How this command works on a job: wait or not, where to put the results, what to report to."""

    wait: bool
    poll_s: float = 30.0
    output: Path | None = None
    force: bool = False
    credentials: str | None = None
    progress: ProgressReporter = field(default_factory=NullProgress)
    notice: Notice = _quiet


def submit(plan: SubmitPlan, parsed: ParsedInput, *, store: JobStore, run: Run) -> Job:
    """Create the job, or carry on with the unfinished one for the same file (waiting for it, when
    another process is running it), then start it."""
    if plan.output is not None:
        check_output_file(plan.output, force=plan.force)
    with exclusive(store.root / "submit.lock"):  # two submits of one file find or make one job
        found = None if plan.new else _matching(store, plan, parsed)
        if found is None:
            ctx = _create(plan, parsed, store, run)
        else:
            lock = _lock(store, found.id)
            owned = lock.acquire()
    if found is None:
        run.notice(f"batch job {ctx.job.id} created ({ctx.job.backend}, {ctx.job.counts.total} requests)")
        try:
            return _start(ctx, run)
        finally:
            ctx.lock.release()  # type: ignore[union-attr]
    if owned:
        run.notice(f"batch job {found.id} resuming ({found.backend}, {found.counts.total} requests)")
    return _carry_on(store, found.id, lock if owned else None, run)


def resume(store: JobStore, job_id: str, run: Run) -> Job:
    """Carry on with a job: the local runner sends only what has not succeeded (failed requests of a
    finished local job included); remote parts not yet submitted are submitted; with wait, to the end."""
    if run.output is not None:
        check_output_file(run.output, force=run.force)
    job = store.get(job_id)
    lock = _lock(store, job.id)
    owned = lock.adopt(job.id) or lock.acquire()  # a detached worker inherits its submitter's lock
    return _carry_on(store, job.id, lock if owned else None, run, rerun_failed=True)


def _matching(store: JobStore, plan: SubmitPlan, parsed: ParsedInput) -> Job | None:
    for old in store.unfinished_for(parsed.sha256):
        same = (old.backend, old.provider, old.model, old.base_url)
        if same == (plan.backend, plan.provider.name, plan.value("model"), plan.value("base_url")):
            return old
    return None


def _create(plan: SubmitPlan, parsed: ParsedInput, store: JobStore, run: Run) -> JobContext:
    """A new job, saved with this process as its owner (nobody can pick it up half made)."""
    provider = plan.provider
    now = time.time()
    est = estimate(plan, parsed)
    job = Job(
        id=new_job_id(),
        name=plan.name,
        backend=plan.backend,  # type: ignore[arg-type]
        provider=provider.name,
        model=plan.value("model"),
        input=str(plan.input.resolve()),
        input_hash=parsed.sha256,
        url=parsed.url,
        counts=Counts(total=len(parsed.requests)),
        base_url=plan.value("base_url"),
        base_url_auth=plan.credentials is not None,
        api_key_env=provider.api_key_env,
        concurrency=plan.value("concurrency"),
        timeout_s=plan.value("timeout"),
        max_retries=plan.value("max_retries"),
        backoff_s=plan.value("backoff"),
        endpoint_wait_s=plan.value("endpoint_wait"),
        rpm=plan.value("rpm"),
        tpm=plan.value("tpm"),
        output=str(plan.output.resolve()) if plan.output else None,
        output_force=plan.force,
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
    ctx = _make_context(store, job, parsed.requests, run, _lock(store, job.id))
    ctx.api_key()  # a missing key fails before the job exists
    write_jsonl(store.job_dir(job.id) / REQUESTS_FILE, (r.model_dump(mode="json") for r in parsed.requests))
    if not ctx.lock.acquire():  # type: ignore[union-attr]
        raise OperationFailed(f"batch job {job.id} was locked before it was created")
    ctx.save()
    return ctx


def _carry_on(
    store: JobStore, job_id: str, lock: JobLock | None, run: Run, *, rerun_failed: bool = False
) -> Job:
    """Work on a job this process owns (`lock` held), or attach to the process that owns it."""
    if lock is None:
        return _attach(store, job_id, run)
    try:
        ctx = _context(store, store.get(job_id), run, lock)  # read again: now nobody else writes it
        job = ctx.job
        if run.output is not None:
            job.output, job.output_force, job.output_written = str(run.output.resolve()), run.force, False
        if rerun_failed and job.backend == "local" and job.state == "completed" and job.counts.failed:
            job.state, job.ended_at = "running", None  # run the failed requests again
            (store.job_dir(job.id) / RESULTS_FILE).unlink(missing_ok=True)
        if job.ended:
            _finish(ctx)  # writes what a dead owner left unwritten, and this command's -o
            return job
        if job.backend == "local" and job.cancel_requested:
            get_backend("local").cancel(ctx)
            _finish(ctx)
            return job
        return _start(ctx, run)
    finally:
        lock.release()


def _start(ctx: JobContext, run: Run) -> Job:
    """Run (local) or submit (remote) as the owner; on any failure the job is kept, marked interrupted."""
    job = ctx.job
    try:
        get_backend(job.backend).start(ctx, wait=run.wait)
    except BaseException as exc:
        _stopped(ctx, exc)
        raise _resumable(job, exc) from None
    if ctx.outcome == "signal":
        raise Interrupted(
            f"batch job {job.id} {job.error}: {job.counts.done} of {job.counts.total} requests done and kept",
            hint=f"`llmops batch resume {job.id} --wait` carries on",
        )
    if ctx.outcome == "endpoint_down":
        raise OperationFailed(
            f"batch job {job.id} stopped: {job.error}; {job.counts.done} of {job.counts.total} requests "
            "done and kept",
            hint=f"once the endpoint is back, `llmops batch resume {job.id} --wait` carries on "
            "(or give --endpoint-wait SECONDS to wait for it)",
        )
    if not run.wait:
        return job if job.backend == "local" else _refresh_owned(ctx)
    return wait_for(ctx, poll_s=run.poll_s)


def _stopped(ctx: JobContext, exc: BaseException) -> None:
    """A start that failed or was interrupted: keep what is done, say why, never leave it 'running'."""
    job = ctx.job
    if job.ended:
        return
    job.state = "interrupted"
    job.error = "interrupted" if isinstance(exc, KeyboardInterrupt) else _message(exc)
    if job.backend == "local":
        job.counts = ctx.store.journal_counts(job.id, len(ctx.requests))
    ctx.save()


def _resumable(job: Job, exc: BaseException) -> BaseException:
    """The error to report for a failed start, naming the command that carries the job on."""
    resume = f"`llmops batch resume {job.id} --wait` carries on"
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted(f"batch job {job.id} interrupted", hint=resume)
    if isinstance(exc, LlmopsError):
        exc.hint = f"{exc.hint}; then {resume}" if exc.hint else resume
    return exc


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, LlmopsError) else f"{type(exc).__name__}: {exc}"


def wait_for(ctx: JobContext, *, poll_s: float) -> Job:
    """As the owner, poll until the job ends, reporting progress; the local run has ended already."""
    backend = get_backend(ctx.job.backend)
    job = ctx.job
    try:
        _poll(ctx, backend)
        if not job.ended and job.state != "interrupted":
            progress = ctx.progress
            progress.start(job.counts.total, f"batch {job.id}")
            reported = 0
            try:
                while not (job.ended or job.state == "interrupted"):
                    if job.counts.done > reported:
                        progress.update(
                            job.counts.done - reported,
                            ok=job.counts.succeeded,
                            failed=job.counts.failed,
                            state=job.state,
                        )
                        reported = job.counts.done
                    time.sleep(poll_s)
                    _poll(ctx, backend)
            finally:
                progress.finish()
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped waiting for batch job {job.id}; it carries on at the provider",
            hint=f"`llmops batch status {job.id}` shows where it stands, "
            f"`llmops batch resume {job.id} --wait` waits again",
        ) from None
    if job.ended:
        _finish(ctx)
    return job


def _poll(ctx: JobContext, backend: Any) -> None:
    """One refresh; a provider failure is recorded on the job before it is reported."""
    try:
        backend.refresh(ctx)
    except LlmopsError as exc:
        ctx.job.error = exc.message
        ctx.save()
        exc.hint = (
            f"{exc.hint + '; ' if exc.hint else ''}`llmops batch status {ctx.job.id}` asks again, "
            f"`llmops batch cancel {ctx.job.id}` stops it"
        )
        raise


def _attach(store: JobStore, job_id: str, run: Run) -> Job:
    """Another process owns the job: wait for it to end (taking over if it dies), or show where it is."""
    job = peek(store, job_id)
    holder = _lock(store, job.id).holder()
    who = f"another process (pid {holder})" if holder and holder > 0 else "another process"
    if not run.wait:
        if run.output is not None:
            raise UsageError(
                f"batch job {job.id} is being run by {who}; -o needs --wait here",
                hint=f"add --wait, or `llmops batch results {job.id} -o FILE` once it ends",
            )
        run.notice(f"batch job {job.id} is being run by {who}; `llmops batch status {job.id}` shows it")
        return job
    run.notice(f"batch job {job.id} is being run by {who}; waiting for it to end")
    progress = run.progress
    progress.start(job.counts.total, f"batch {job.id}")
    reported = job.counts.done
    try:
        while True:
            time.sleep(min(run.poll_s, ATTACH_POLL_S))
            lock = _lock(store, job.id)
            if lock.acquire():  # the owner is gone: it ended the job, or it died and we carry on
                progress.finish()
                if not store.get(job.id).ended:
                    run.notice(f"the process running batch job {job.id} stopped; carrying on with it")
                return _carry_on(store, job.id, lock, run)
            job = peek(store, job.id)
            if job.counts.done > reported:
                progress.update(job.counts.done - reported, ok=job.counts.succeeded, failed=job.counts.failed)
                reported = job.counts.done
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped waiting for batch job {job.id}; {who} carries on with it",
            hint=f"`llmops batch status {job.id}` shows its progress",
        ) from None
    finally:
        progress.finish()


# --- looking at a job ----------------------------------------------------------------------------


def peek(store: JobStore, job_id: str) -> Job:
    """The stored record, with a local job's counts from its journal; changes nothing."""
    job = store.get(job_id)
    if job.backend == "local" and not job.ended:
        job.counts = store.journal_counts(job.id, job.counts.total)
    return job


def inspect(store: JobStore, job_id: str) -> tuple[Job, LlmopsError | None, int | None]:
    """Where a job stands: asked of the provider when nobody owns the job, else its stored record.

    Never raises for a provider's failure or odd answer: the job comes back with the problem beside it
    (and the pid of the process that owns it, when one does)."""
    job = store.get(job_id)
    lock = _lock(store, job.id)
    if not lock.acquire():
        return peek(store, job.id), None, lock.holder()
    try:
        ctx = _context(store, store.get(job.id), Run(wait=False), lock)
        try:
            _refresh_owned(ctx)
        except LlmopsError as exc:
            ctx.job.error = exc.message
            ctx.save()
            return ctx.job, exc, None
        return ctx.job, None, None
    finally:
        lock.release()


def _refresh_owned(ctx: JobContext) -> Job:
    """As the owner: ask the backend where the job stands; once ended, finish it."""
    get_backend(ctx.job.backend).refresh(ctx)
    if ctx.job.ended:
        _finish(ctx)
    return ctx.job


def list_jobs(store: JobStore) -> list[Job]:
    """Every job; local jobs that say they run are checked (remote jobs are refreshed by `status ID`)."""
    out = []
    for job in store.all():
        if job.backend == "local" and job.state in ("running", "cancelling"):
            job = inspect(store, job.id)[0]
        out.append(job)
    return out


# --- ending ------------------------------------------------------------------------------------


def _finish(ctx: JobContext) -> None:
    """Once ended: the merged results (input order), the actual cost from the usage the results report,
    and the copy to the user's -o file. Each done once; calling it again does what is left."""
    job, store = ctx.job, ctx.store
    path = store.job_dir(job.id) / RESULTS_FILE
    if not path.exists():
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
            total=len(ctx.requests),
            succeeded=sum(ln.ok for ln in lines),
            failed=sum(not ln.ok for ln in lines),
        )
        job.ended_at = job.ended_at or time.time()
        write_jsonl(path, [ln.model_dump(mode="json") for ln in lines])
        ctx.save()
    _deliver(ctx)


def _deliver(ctx: JobContext) -> None:
    """Copy the results to the file the user asked for (-o), once, never over a file without --force."""
    job = ctx.job
    if not job.output or job.output_written or not job.ended:
        return
    source = ctx.store.job_dir(job.id) / RESULTS_FILE
    try:
        copy_results(source, Path(job.output), force=job.output_force)
    except LlmopsError as exc:
        job.error = f"results not written to {job.output}: {exc.message}"
        ctx.save()
        raise UsageError(
            job.error, hint=f"the job kept them: `llmops batch results {job.id} -o FILE` writes them"
        ) from None
    job.output_written = True
    ctx.save()


def copy_results(source: Path, target: Path, *, force: bool) -> None:
    """The results file copied to where the user asked, atomically (llmops.output's staged file)."""
    import shutil

    with staged_file(target, force=force) as tmp:
        shutil.copyfile(source, tmp)


def cancel(store: JobStore, job_id: str) -> Job:
    """Cancel a job in any state short of ended; works whether or not another process is running it."""
    job = store.get(job_id)
    if job.ended:
        raise UsageError(f"batch job {job.id} has already {job.state}", hint="nothing to cancel")
    store.request_cancel(job.id)
    lock = _lock(store, job.id)
    if lock.acquire():
        try:
            ctx = _context(store, store.get(job.id), Run(wait=False), lock)
            get_backend(job.backend).cancel(ctx)
            if ctx.job.ended:
                _finish(ctx)
            return ctx.job
        finally:
            lock.release()
    # the owner sees the flag (the local runner within a second, a remote poll at its next turn)
    job = peek(store, job.id)
    problems = get_backend(job.backend).send_cancels(_context(store, job, Run(wait=False)))
    job.state = "cancelling"
    if problems:
        raise OperationFailed(
            f"batch job {job.id} is marked cancelled, but the provider's cancel did not get through: "
            f"{problems[0]}",
            hint=f"`llmops batch cancel {job.id}` tries again",
        )
    return job


def results_path(store: JobStore, job_id: str) -> tuple[Job, Path]:
    """The merged results file of an ended job (asking the provider first, when nobody else does)."""
    job, problem, _ = inspect(store, job_id)
    path = store.job_dir(job.id) / RESULTS_FILE
    if not job.ended or not path.exists():
        if problem is not None:
            raise problem
        hint = (
            f"`llmops batch resume {job.id}` carries on with it"
            if job.state == "interrupted"
            else f"`llmops batch status {job.id}` shows its progress"
        )
        raise OperationFailed(f"batch job {job.id} is {job.state}; results come once it ends", hint=hint)
    return job, path


def write_results(store: JobStore, job_id: str, output: Path, *, force: bool) -> Job:
    """`batch results -o FILE`: the output checked before anything is asked of a provider."""
    check_output_file(output, force=force)
    job, path = results_path(store, job_id)
    copy_results(path, output, force=force)
    return job


# --- helpers -------------------------------------------------------------------------------------


def _lock(store: JobStore, job_id: str) -> JobLock:
    return JobLock(store.job_dir(job_id) / "lock")


def _make_context(
    store: JobStore, job: Job, requests: list[RequestLine], run: Run, lock: JobLock | None
) -> JobContext:
    return JobContext(
        store, job, requests, run.progress, lock=lock, credentials=run.credentials, notice=run.notice
    )


def _context(store: JobStore, job: Job, run: Run, lock: JobLock | None = None) -> JobContext:
    path = store.job_dir(job.id) / REQUESTS_FILE
    with path.open(encoding="utf-8") as fh:
        requests = [RequestLine.model_validate_json(line) for line in fh if line.strip()]
    return _make_context(store, job, requests, run, lock)
