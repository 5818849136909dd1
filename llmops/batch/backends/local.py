"""The local backend: the runner against any OpenAI-compatible server, journaled in the job store.

One runner per job at a time (an flock on the job's folder, released by the kernel even on SIGKILL).
Without --wait the run happens in a detached `llmops batch resume ID --wait` process.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from llmops.batch.backends.base import JobContext
from llmops.batch.convert import error_line
from llmops.batch.runner import Runner, RunnerConfig
from llmops.errors import LlmopsError


class JobBusy(LlmopsError):
    """Another process is running this job right now."""


@contextmanager
def job_lock(ctx: JobContext) -> Iterator[None]:
    path = ctx.store.job_dir(ctx.job.id) / "lock"
    fh = path.open("a")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(
                f"batch job {ctx.job.id} is already being run by another process (pid {ctx.job.worker_pid})",
                hint=f"`llmops batch status {ctx.job.id}` shows its progress",
            ) from None
        yield
    finally:
        fh.close()


def runner_alive(ctx: JobContext) -> bool:
    """True while some process holds the job's lock (or a just-spawned worker has yet to take it)."""
    path = ctx.store.job_dir(ctx.job.id) / "lock"
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return _pid_alive(ctx.job.worker_pid) and time.time() - ctx.job.updated_at < 30


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalBackend:
    name = "local"

    def start(self, ctx: JobContext, *, wait: bool) -> None:
        ctx.api_key()  # exit 3 now, naming the variable, rather than in a detached worker
        if wait:
            self.run(ctx)
            return
        log = (ctx.store.job_dir(ctx.job.id) / "worker.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmops", "batch", "resume", ctx.job.id, "--wait"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        ctx.job.worker_pid = proc.pid
        ctx.save()

    def run(self, ctx: JobContext) -> None:
        """Send every request not yet succeeded; each result is committed to the journal as it lands."""
        job, store = ctx.job, ctx.store
        with job_lock(ctx):
            job.worker_pid, job.state = os.getpid(), "running"
            ctx.save()
            done = store.succeeded_ids(job.id)
            pending = [(i, r) for i, r in enumerate(ctx.requests) if r.custom_id not in done]
            cfg = RunnerConfig(
                base_url=job.base_url or "",
                concurrency=job.concurrency,
                timeout_s=job.timeout_s,
                max_retries=job.max_retries,
                backoff_s=job.backoff_s,
                rpm=job.rpm,
                tpm=job.tpm,
                api_key=ctx.api_key(),
            )
            runner = Runner(
                cfg,
                on_done=lambda seq, line: store.record(job.id, seq, line),
                should_stop=_cancel_watch(ctx),
                progress=ctx.progress,
            )
            runner.run(pending, total=len(ctx.requests), already=len(done))
            fresh = store.get(job.id)
            job.cancel_requested = fresh.cancel_requested
            if runner.stopped or job.cancel_requested:
                self._cancel_rest(ctx)
            else:
                job.counts = store.journal_counts(job.id, len(ctx.requests))
                job.state = "completed" if job.counts.done == job.counts.total else "interrupted"
            ctx.save()

    def refresh(self, ctx: JobContext) -> None:
        job = ctx.job
        job.counts = ctx.store.journal_counts(job.id, len(ctx.requests))
        if job.state in ("running", "cancelling") and not runner_alive(ctx):
            if job.state == "cancelling":
                self._cancel_rest(ctx)
            else:
                job.state = "interrupted"
            ctx.save()

    def cancel(self, ctx: JobContext) -> None:
        job = ctx.job
        job.cancel_requested = True
        if runner_alive(ctx):
            job.state = "cancelling"
        else:
            self._cancel_rest(ctx)
        ctx.save()

    @staticmethod
    def _cancel_rest(ctx: JobContext) -> None:
        """Every request without a result gets a cancelled line, so results hold each custom_id once."""
        job, store = ctx.job, ctx.store
        have = {ln.custom_id for ln in store.result_lines(job.id)}
        store.record_many(
            job.id,
            [
                (
                    i,
                    error_line(
                        r.custom_id,
                        "batch_cancelled",
                        "the job was cancelled before this request ran",
                        "local",
                    ),
                )
                for i, r in enumerate(ctx.requests)
                if r.custom_id not in have
            ],
        )
        job.counts = store.journal_counts(job.id, len(ctx.requests))
        job.state = "cancelled" if len(have) < len(ctx.requests) else "completed"


def _cancel_watch(ctx: JobContext):
    """A should_stop callable that looks at the store's cancel flag at most once a second."""
    last = [0.0, False]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            last[1] = ctx.store.get(ctx.job.id).cancel_requested
        return bool(last[1])

    return should_stop
