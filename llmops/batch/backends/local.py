"""The local backend: the runner against any OpenAI-compatible server, journaled in the job store.

The process that owns the job (`llmops.batch.lock`) runs it. Without --wait the run happens in a detached
`llmops batch resume ID --wait` process that inherits the submitter's lock, so the job is never unowned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from llmops.batch.backends.base import JobContext
from llmops.batch.convert import error_line
from llmops.batch.endpoint import BASE_URL_ENV, redact
from llmops.batch.journal import Journal
from llmops.batch.lock import OWNER_FD_ENV
from llmops.batch.runner import Runner, RunnerConfig


class LocalBackend:
    name = "local"

    def start(self, ctx: JobContext, *, wait: bool) -> None:
        ctx.api_key()  # exit 3 now, naming the variable, rather than in a detached worker
        base_url = ctx.base_url()
        if wait:
            self.run(ctx)
            return
        assert ctx.lock is not None and ctx.lock.fd is not None
        env = {**os.environ, OWNER_FD_ENV: f"{ctx.job.id}:{ctx.lock.fd}"}
        if ctx.job.base_url_auth and base_url:
            env[BASE_URL_ENV] = base_url  # the credentials reach the worker in memory, not on disk
        ctx.job.state = "running"  # as the worker will say; it, not this process, saves the record
        with (ctx.store.job_dir(ctx.job.id) / "worker.log").open("ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "llmops", "batch", "resume", ctx.job.id, "--wait"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                pass_fds=(ctx.lock.fd,),
                env=env,
            )

    def run(self, ctx: JobContext) -> None:
        """Send every request not yet succeeded; results reach the journal in group commits."""
        job, store = ctx.job, ctx.store
        job.worker_pid, job.state, job.error = os.getpid(), "running", None
        ctx.save()
        done = store.succeeded_ids(job.id)
        pending = [(i, r) for i, r in enumerate(ctx.requests) if r.custom_id not in done]
        cfg = RunnerConfig(
            base_url=ctx.base_url() or "",
            concurrency=job.concurrency,
            timeout_s=job.timeout_s,
            max_retries=job.max_retries,
            backoff_s=job.backoff_s,
            rpm=job.rpm,
            tpm=job.tpm,
            api_key=ctx.api_key(),
            endpoint_wait_s=job.endpoint_wait_s,
            drain_s=min(30.0, job.timeout_s),
        )
        journal = Journal(store.path, job.id)
        runner = Runner(
            cfg,
            on_done=journal.add,
            should_stop=_cancel_watch(ctx),
            on_notice=ctx.notice,
            progress=ctx.progress,
        )
        try:
            ctx.outcome = runner.run(pending, total=len(ctx.requests), already=len(done))
        finally:
            journal.close()
        job.cancel_requested = store.cancel_requested(job.id)
        if ctx.outcome == "cancelled" or job.cancel_requested:
            self._cancel_rest(ctx)
        else:
            job.counts = store.journal_counts(job.id, len(ctx.requests))
            job.state = "completed" if job.counts.done == job.counts.total else "interrupted"
            if ctx.outcome == "endpoint_down":
                job.error = (
                    f"the endpoint {redact(job.base_url)} refused connections"
                    f"{f' for {job.endpoint_wait_s:g}s' if job.endpoint_wait_s else ''} "
                    f"({runner.breaker.reason if runner.breaker else 'connection refused'})"
                )
            elif ctx.outcome == "signal":
                job.error = "was interrupted" + (
                    f"; {runner.dropped} request(s) in flight were dropped and will be sent again"
                    if runner.dropped
                    else " (the requests in flight were finished first)"
                )
        ctx.save()

    def refresh(self, ctx: JobContext) -> None:
        """The owner's view: nobody else runs the job, so a job still marked running has stopped."""
        job = ctx.job
        job.counts = ctx.store.journal_counts(job.id, len(ctx.requests))
        if job.state == "cancelling" or (job.state == "running" and job.cancel_requested):
            self._cancel_rest(ctx)
            ctx.save()
        elif job.state == "running":
            job.state = "interrupted"
            job.error = job.error or "the process running it stopped"
            ctx.save()

    def cancel(self, ctx: JobContext) -> None:
        ctx.job.cancel_requested = True
        self._cancel_rest(ctx)
        ctx.save()

    def send_cancels(self, ctx: JobContext) -> list[str]:
        return []  # the owner's runner sees the cancel flag within a second

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


def _cancel_watch(ctx: JobContext) -> Callable[[], bool]:
    """A should_stop callable that looks at the store's cancel flag at most once a second."""
    last = [0.0, False]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            last[1] = ctx.store.cancel_requested(ctx.job.id)
        return bool(last[1])

    return should_stop
