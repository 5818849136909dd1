"""The small interface every batch backend fills, and what remote backends share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.batch.convert import error_line
from llmops.batch.models import TERMINAL, Counts, Job, OutputLine, RemotePart, RequestLine
from llmops.batch.store import JobStore
from llmops.errors import EnvironmentMissing, OperationFailed
from llmops.progress import NullProgress, ProgressReporter


@dataclass
class JobContext:
    store: JobStore
    job: Job
    requests: list[RequestLine]
    progress: ProgressReporter = field(default_factory=NullProgress)

    def save(self) -> None:
        self.store.save(self.job)

    def api_key(self) -> str | None:
        """The key from the variable the provider profile names; exit 3 naming the variable when unset."""
        var = self.job.api_key_env
        if not var:
            return None
        key = os.environ.get(var)
        if not key:
            raise EnvironmentMissing(
                f"the {self.job.provider} API key is missing: ${var} is not set",
                hint=f"export {var}=... (the '{self.job.provider}' provider profile names it)",
            )
        return key


class Backend(Protocol):
    name: str

    def start(self, ctx: JobContext, *, wait: bool) -> None:
        """Begin (or carry on with) the job: submit what is not submitted yet, or run it."""

    def refresh(self, ctx: JobContext) -> None:
        """Update the job's state and counts; once it has ended, put every result in the journal."""

    def cancel(self, ctx: JobContext) -> None:
        """Ask the provider (or the runner) to stop."""


NOT_SUBMITTED = "not_submitted"


class RemoteBackend:
    """Shared by the provider batch APIs: one remote batch per part, results merged in input order."""

    name = "remote"
    terminal_status: frozenset[str] = frozenset()

    def _ended(self, part: RemotePart) -> bool:
        return part.status == NOT_SUBMITTED or (
            part.remote_id is not None and part.status in self.terminal_status
        )

    # --- what a provider module fills in -----------------------------------------------------
    def client(self, ctx: JobContext) -> Any:
        raise NotImplementedError

    def create(self, client: Any, ctx: JobContext, part: RemotePart, requests: list[RequestLine]) -> None:
        raise NotImplementedError

    def retrieve(self, client: Any, part: RemotePart) -> None:
        raise NotImplementedError

    def results(self, client: Any, part: RemotePart) -> list[OutputLine]:
        raise NotImplementedError

    def missing_line(self, part: RemotePart, custom_id: str) -> OutputLine:
        raise NotImplementedError

    def cancel_part(self, client: Any, part: RemotePart) -> None:
        raise NotImplementedError

    def part_state(self, part: RemotePart) -> str:
        """One of completed, failed, expired, cancelled (for an ended part)."""
        raise NotImplementedError

    # --- shared logic --------------------------------------------------------------------------
    def start(self, ctx: JobContext, *, wait: bool) -> None:
        pending = [p for p in ctx.job.parts if p.remote_id is None and p.status != NOT_SUBMITTED]
        if not pending:
            return
        client = self.client(ctx)
        for part in pending:
            self.create(client, ctx, part, ctx.requests[part.first : part.first + part.size])
            ctx.save()

    def refresh(self, ctx: JobContext) -> None:
        job = ctx.job
        if job.ended:
            return
        client = self.client(ctx)
        for part in job.parts:
            if part.remote_id and part.status not in self.terminal_status:
                self.retrieve(client, part)
        job.counts = Counts(
            total=len(ctx.requests),
            succeeded=sum(p.counts.succeeded for p in job.parts),
            failed=sum(p.counts.failed for p in job.parts),
        )
        if not all(self._ended(p) for p in job.parts):
            unsent = any(p.remote_id is None and p.status != NOT_SUBMITTED for p in job.parts)
            job.state = "cancelling" if job.cancel_requested else "interrupted" if unsent else "running"
            ctx.save()
            return
        self._collect(client, ctx)

    def _collect(self, client: Any, ctx: JobContext) -> None:
        job = ctx.job
        index = {r.custom_id: i for i, r in enumerate(ctx.requests)}
        lines: list[tuple[int, OutputLine]] = []
        for part in job.parts:
            got = (
                {}
                if part.status == NOT_SUBMITTED
                else {ln.custom_id: ln for ln in self.results(client, part) if ln.custom_id in index}
            )
            for request in ctx.requests[part.first : part.first + part.size]:
                line = got.get(request.custom_id) or (
                    error_line(
                        request.custom_id, "batch_cancelled", "cancelled before this part was submitted"
                    )
                    if part.status == NOT_SUBMITTED
                    else self.missing_line(part, request.custom_id)
                )
                lines.append((index[request.custom_id], line))
        ctx.store.record_many(job.id, lines)
        job.counts = ctx.store.journal_counts(job.id, len(ctx.requests))
        states = {"cancelled" if p.status == NOT_SUBMITTED else self.part_state(p) for p in job.parts}
        for state in ("cancelled", "expired", "failed"):
            if state in states:
                job.state = state  # type: ignore[assignment]
                break
        else:
            job.state = "completed"
        ctx.save()

    def cancel(self, ctx: JobContext) -> None:
        job = ctx.job
        job.cancel_requested = True
        client = self.client(ctx)
        for part in job.parts:
            if part.remote_id is None:
                part.status = NOT_SUBMITTED
            elif part.status not in self.terminal_status:
                self.cancel_part(client, part)
        if job.state not in TERMINAL:
            job.state = "cancelling"
        ctx.save()
        self.refresh(ctx)


@contextmanager
def sdk_errors(sdk: Any, provider: str, key_var: str, doing: str) -> Iterator[None]:
    """SDK errors (openai and anthropic share the class names) as one line, exit 1, naming what
    llmops was doing; the key never appears in it."""
    try:
        yield
    except sdk.AuthenticationError:
        raise OperationFailed(
            f"{provider} refused the API key while trying to {doing}",
            hint=f"check ${key_var} (or the variable your provider profile names)",
        ) from None
    except sdk.APIStatusError as exc:
        raise OperationFailed(
            f"{provider} answered {exc.status_code} while trying to {doing}: {api_error_message(exc)}"
        ) from None
    except sdk.APIConnectionError:
        raise OperationFailed(
            f"could not reach the {provider} API to {doing}", hint="check the network or --base-url"
        ) from None


def api_error_message(exc: Any) -> str:
    """The message inside an API error body ({"error": {"message": ...}}), else the SDK's own."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", exc))
