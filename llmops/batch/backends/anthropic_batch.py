"""Anthropic Message Batches through the official SDK; chat bodies converted to Messages params."""

from __future__ import annotations

from typing import Any

from llmops.batch.backends.base import JobContext, RemoteBackend, sdk_errors
from llmops.batch.convert import anthropic_result_to_output, chat_to_anthropic, error_line
from llmops.batch.models import Counts, OutputLine, RemotePart, RequestLine
from llmops.errors import require_module

ENDED = "ended"


class AnthropicBackend(RemoteBackend):
    name = "anthropic"
    terminal_status = frozenset({ENDED})

    def client(self, ctx: JobContext) -> Any:
        anthropic = require_module("anthropic", extra="cloud", purpose="the anthropic batch backend")
        return anthropic.Anthropic(api_key=ctx.api_key(), base_url=ctx.job.base_url, max_retries=3)

    def create(self, client: Any, ctx: JobContext, part: RemotePart, requests: list[RequestLine]) -> None:
        payload = [{"custom_id": r.custom_id, "params": chat_to_anthropic(r.body)} for r in requests]
        with _api_errors("create the message batch"):
            batch = client.messages.batches.create(requests=payload)
        part.remote_id, part.status = batch.id, batch.processing_status

    def retrieve(self, client: Any, part: RemotePart) -> None:
        with _api_errors(f"retrieve message batch {part.remote_id}"):
            batch = client.messages.batches.retrieve(part.remote_id)
        self._update(part, batch)

    @staticmethod
    def _update(part: RemotePart, batch: Any) -> None:
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
        with _api_errors(f"stream the results of message batch {part.remote_id}"):
            return [
                anthropic_result_to_output(item.model_dump(mode="json"), part.remote_id or "")
                for item in client.messages.batches.results(part.remote_id)
            ]

    def missing_line(self, part: RemotePart, custom_id: str) -> OutputLine:
        return error_line(
            custom_id,
            "missing_result",
            "the provider returned no result for this request",
            part.remote_id or "",
        )

    def cancel_part(self, client: Any, part: RemotePart) -> None:
        with _api_errors(f"cancel message batch {part.remote_id}"):
            batch = client.messages.batches.cancel(part.remote_id)
        self._update(part, batch)

    def part_state(self, part: RemotePart) -> str:
        if part.message == "cancel initiated":
            return "cancelled"
        if part.message == "expired":
            return "expired"
        return "completed"


def _api_errors(doing: str) -> Any:
    import anthropic

    return sdk_errors(anthropic, "Anthropic", "ANTHROPIC_API_KEY", doing)
