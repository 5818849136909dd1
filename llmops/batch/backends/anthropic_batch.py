"""Anthropic Message Batches through the official SDK; chat bodies converted to Messages params."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from llmops.batch.backends.base import (
    Answer,
    JobContext,
    RemoteBackend,
    read_answer,
    sdk_errors,
    unexpected_line,
)
from llmops.batch.convert import anthropic_result_to_output, chat_to_anthropic, error_line
from llmops.batch.models import Counts, OutputLine, RemotePart
from llmops.errors import require_module
from llmops.prompts import RequestLine

ENDED = "ended"
PROVIDER = "Anthropic"


class RequestCounts(Answer):
    processing: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    errored: int = Field(ge=0)
    canceled: int = Field(ge=0)
    expired: int = Field(ge=0)


class MessageBatch(Answer):
    """What llmops reads of a Message Batch object."""

    id: str = Field(min_length=1)
    processing_status: str
    request_counts: RequestCounts
    cancel_initiated_at: str | None = None


class AnthropicBackend(RemoteBackend):
    name = "anthropic"
    provider = PROVIDER
    terminal_status = frozenset({ENDED})

    def client(self, ctx: JobContext) -> Any:
        anthropic = require_module("anthropic", extra="cloud", purpose="the anthropic batch backend")
        return anthropic.Anthropic(api_key=ctx.api_key(), base_url=ctx.base_url(), max_retries=3)

    def create(self, client: Any, ctx: JobContext, part: RemotePart, requests: list[RequestLine]) -> None:
        payload = [{"custom_id": r.custom_id, "params": chat_to_anthropic(r.body)} for r in requests]
        doing = "create the message batch"
        with _api_errors(doing):
            batch = read_answer(
                client.messages.batches.create(requests=payload), MessageBatch, PROVIDER, doing
            )
        part.remote_id, part.status = batch.id, batch.processing_status

    def retrieve(self, client: Any, part: RemotePart) -> None:
        doing = f"retrieve message batch {part.remote_id}"
        with _api_errors(doing):
            batch = read_answer(
                client.messages.batches.retrieve(part.remote_id), MessageBatch, PROVIDER, doing
            )
        self._update(part, batch)

    @staticmethod
    def _update(part: RemotePart, batch: MessageBatch) -> None:
        part.status = batch.processing_status
        c = batch.request_counts
        part.counts = Counts(
            total=part.size, succeeded=c.succeeded, failed=c.errored + c.canceled + c.expired
        )
        if batch.cancel_initiated_at is not None:
            part.message = "cancel initiated"
        if part.status == ENDED and c.processing == 0 and c.succeeded == 0 and c.errored == 0:
            if c.expired and not c.canceled:
                part.message = "expired"
            elif c.canceled:
                part.message = "cancel initiated"

    def results(self, client: Any, part: RemotePart) -> list[OutputLine]:
        doing = f"stream the results of message batch {part.remote_id}"
        with _api_errors(doing):
            try:
                return [
                    anthropic_result_to_output(item.model_dump(mode="json"), part.remote_id or "")
                    for item in client.messages.batches.results(part.remote_id)
                ]
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise unexpected_line(PROVIDER, doing, exc) from None

    def missing_line(self, part: RemotePart, custom_id: str) -> OutputLine:
        return error_line(
            custom_id,
            "missing_result",
            "the provider returned no result for this request",
            part.remote_id or "",
        )

    def cancel_part(self, client: Any, part: RemotePart) -> None:
        doing = f"cancel message batch {part.remote_id}"
        with _api_errors(doing):
            batch = read_answer(client.messages.batches.cancel(part.remote_id), MessageBatch, PROVIDER, doing)
        self._update(part, batch)

    def part_state(self, part: RemotePart) -> str:
        if part.message in ("cancel initiated", "cancel sent"):
            return "cancelled"
        if part.message == "expired":
            return "expired"
        return "completed"


def _api_errors(doing: str) -> Any:
    import anthropic

    return sdk_errors(anthropic, PROVIDER, "ANTHROPIC_API_KEY", doing)
