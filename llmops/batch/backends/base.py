"""The small interface every batch backend fills, and what remote backends share."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from llmops.batch.convert import error_line
from llmops.batch.endpoint import BASE_URL_ENV, credentials_from_env, redact, with_credentials
from llmops.batch.lock import JobLock
from llmops.batch.models import TERMINAL, Counts, Job, OutputLine, RemotePart
from llmops.batch.store import JobStore
from llmops.errors import EnvironmentMissing, LlmopsError, OperationFailed
from llmops.progress import NullProgress, ProgressReporter
from llmops.prompts import RequestLine

V = TypeVar("V", bound=BaseModel)


def _quiet(text: str) -> None:
    pass


@dataclass
class JobContext:
    """A job being worked on. `lock` held means this process owns the job and may save its record."""

    store: JobStore
    job: Job
    requests: list[RequestLine]
    progress: ProgressReporter = field(default_factory=NullProgress)
    lock: JobLock | None = None
    credentials: str | None = None  # user:pass from the base URL: memory only, never saved
    notice: Callable[[str], None] = _quiet
    outcome: str = "done"  # how the local runner's last run ended

    @property
    def owner(self) -> bool:
        return self.lock is not None and self.lock.held

    def save(self) -> None:
        if not self.owner:  # a bug, not a user error: only the owner writes the record
            raise RuntimeError(f"batch job {self.job.id} saved by a process that does not own it")
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

    def base_url(self) -> str | None:
        """The endpoint with its credentials put back (from memory, or from $LLMOPS_BATCH_BASE_URL)."""
        url = self.job.base_url
        if not url or not self.job.base_url_auth:
            return url
        creds = self.credentials or credentials_from_env(url)
        if not creds:
            raise EnvironmentMissing(
                f"batch job {self.job.id}'s endpoint {redact(with_credentials(url, 'USER:PASS'))} needs the "
                "credentials its base URL had; llmops never stores them",
                hint=f"export {BASE_URL_ENV}=... with the user and password in it, then run this again",
            )
        return with_credentials(url, creds)


class Backend(Protocol):
    name: str

    def start(self, ctx: JobContext, *, wait: bool) -> None:
        """Begin (or carry on with) the job: submit what is not submitted yet, or run it."""

    def refresh(self, ctx: JobContext) -> None:
        """Update the job's state and counts; once it has ended, put every result in the journal."""

    def cancel(self, ctx: JobContext) -> None:
        """Stop the job (its owner calls this): the runner, or the provider's batches."""

    def send_cancels(self, ctx: JobContext) -> list[str]:
        """Ask the provider to cancel, saving nothing (another process owns the job); the problems met."""


class UnexpectedAnswer(OperationFailed):
    """The provider answered, but not in the shape its API reference documents."""


class Answer(BaseModel):
    """The part of a provider's answer llmops reads; other fields are the provider's own business."""

    model_config = ConfigDict(extra="ignore")


def read_answer(obj: Any, view: type[V], provider: str, doing: str) -> V:
    """An SDK object checked against the fields llmops uses: UnexpectedAnswer instead of a crash later."""
    data = obj.model_dump(mode="json", warnings=False) if hasattr(obj, "model_dump") else obj
    try:
        return view.model_validate(data)
    except ValidationError as exc:
        from llmops.errormap import field_message, field_path

        first = exc.errors(include_url=False)[0]
        where = field_path(tuple(first["loc"])) or "the answer"
        raise UnexpectedAnswer(
            f"{provider} answered in an unexpected shape while trying to {doing} "
            f"({where}: {field_message(first)})",
            hint="the job is kept; `llmops batch status ID` asks again, `llmops batch cancel ID` stops it",
        ) from None


def unexpected_line(provider: str, doing: str, exc: Exception) -> UnexpectedAnswer:
    return UnexpectedAnswer(
        f"{provider} answered in an unexpected shape while trying to {doing} ({type(exc).__name__}: {exc})"
    )


NOT_SUBMITTED = "not_submitted"


class RemoteBackend:
    """Shared by the provider batch APIs: one remote batch per part, results merged in input order."""

    name = "remote"
    provider = "remote"
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
            if ctx.store.cancel_requested(ctx.job.id):  # cancelled while parts were being submitted
                break
            self.create(client, ctx, part, ctx.requests[part.first : part.first + part.size])
            ctx.save()

    def refresh(self, ctx: JobContext) -> None:
        job = ctx.job
        if job.ended:
            return
        if job.cancel_requested:
            for part in job.parts:
                if part.remote_id is None:
                    part.status = NOT_SUBMITTED
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

    def send_cancels(self, ctx: JobContext) -> list[str]:
        """Cancel every submitted part still running. An answer in an odd shape still means the provider
        took the request (it answered 2xx); only a call that did not get through is a problem."""
        problems: list[str] = []
        running = [p for p in ctx.job.parts if p.remote_id and p.status not in self.terminal_status]
        if not running:
            return problems
        client = self.client(ctx)
        for part in running:
            try:
                self.cancel_part(client, part)
            except UnexpectedAnswer:
                part.message = "cancel sent"
            except LlmopsError as exc:
                problems.append(exc.message)
        return problems

    def cancel(self, ctx: JobContext) -> None:
        job = ctx.job
        job.cancel_requested = True
        for part in job.parts:
            if part.remote_id is None:
                part.status = NOT_SUBMITTED
        problems = self.send_cancels(ctx)
        if job.state not in TERMINAL:
            job.state = "cancelling"
        ctx.save()
        try:
            self.refresh(ctx)
        except LlmopsError as exc:  # the cancel is recorded and sent; where it stands is for `status`
            job.error = exc.message
            ctx.save()
        if problems:
            raise OperationFailed(
                f"batch job {job.id} is marked cancelled, but the {self.provider} cancel did not get "
                f"through: {problems[0]}",
                hint=f"`llmops batch cancel {job.id}` tries again",
            )


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
    except sdk.APIResponseValidationError as exc:
        raise UnexpectedAnswer(
            f"{provider} answered in an unexpected shape while trying to {doing}: {exc}"
        ) from None


def api_error_message(exc: Any) -> str:
    """The message inside an API error body ({"error": {"message": ...}}), else the SDK's own."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", exc))
