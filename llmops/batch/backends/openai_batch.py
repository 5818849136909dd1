"""The OpenAI Batch API through the official SDK: upload (purpose batch), create (24h), poll, download."""

from __future__ import annotations

import json
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
from llmops.batch.convert import error_line
from llmops.batch.models import Counts, ErrorPart, OutputLine, RemotePart, ResponsePart
from llmops.errors import require_module
from llmops.prompts import RequestLine

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
SUBMITTING = "submitting"
PROVIDER = "OpenAI"


class FileObject(Answer):
    id: str = Field(min_length=1)


class RequestCounts(Answer):
    completed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)


class BatchError(Answer):
    code: str | None = None
    message: str | None = None
    line: int | None = None


class BatchErrors(Answer):
    data: list[BatchError] | None = None


class Batch(Answer):
    """What llmops reads of a Batch object."""

    id: str = Field(min_length=1)
    status: str
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: RequestCounts | None = None
    errors: BatchErrors | None = None
    metadata: dict[str, str] | None = None


def parse_output_line(raw: str) -> OutputLine | None:
    """One line of an OpenAI output or error file; unknown extra keys are dropped, not fatal."""
    if not raw.strip():
        return None
    data = json.loads(raw)
    response = data.get("response")
    error = data.get("error")
    return OutputLine(
        id=str(data.get("id") or ""),
        custom_id=data["custom_id"],
        response=ResponsePart(
            status_code=response["status_code"],
            request_id=response.get("request_id"),
            body=response.get("body"),
        )
        if response
        else None,
        error=ErrorPart(code=error.get("code"), message=error.get("message") or "") if error else None,
    )


class OpenAIBackend(RemoteBackend):
    name = "openai"
    provider = PROVIDER
    terminal_status = TERMINAL

    def client(self, ctx: JobContext) -> Any:
        openai = require_module("openai", extra="cloud", purpose="the openai batch backend")
        return openai.OpenAI(api_key=ctx.api_key(), base_url=ctx.base_url(), max_retries=3)

    def create(self, client: Any, ctx: JobContext, part: RemotePart, requests: list[RequestLine]) -> None:
        job = ctx.job
        metadata = {"llmops_job": job.id, "llmops_part": f"{part.index + 1}/{len(job.parts)}"}
        if part.status == SUBMITTING and (found := self._find(client, metadata)) is not None:
            part.remote_id, part.input_file_id, part.status = found.id, found.input_file_id, found.status
            return
        part.status = SUBMITTING
        ctx.save()
        data = "".join(r.model_dump_json() + "\n" for r in requests).encode()
        doing = "upload the batch file"
        with _api_errors(doing):
            upload = client.files.create(file=(f"{job.id}-part{part.index + 1}.jsonl", data), purpose="batch")
            part.input_file_id = read_answer(upload, FileObject, PROVIDER, doing).id
            ctx.save()
            doing = "create the batch"
            batch = read_answer(
                client.batches.create(
                    input_file_id=part.input_file_id,
                    endpoint=job.url,
                    completion_window="24h",
                    metadata=metadata,
                ),
                Batch,
                PROVIDER,
                doing,
            )
        part.remote_id, part.status = batch.id, batch.status

    @staticmethod
    def _find(client: Any, metadata: dict[str, str]) -> Batch | None:
        """A batch created just before a crash: found by its metadata, so a resume does not pay twice."""
        doing = "list batches"
        with _api_errors(doing):
            for item in client.batches.list(limit=100):
                batch = read_answer(item, Batch, PROVIDER, doing)
                if (batch.metadata or {}) == metadata:
                    return batch
        return None

    def retrieve(self, client: Any, part: RemotePart) -> None:
        doing = f"retrieve batch {part.remote_id}"
        with _api_errors(doing):
            batch = read_answer(client.batches.retrieve(part.remote_id), Batch, PROVIDER, doing)
        part.status = batch.status
        counts = batch.request_counts
        if counts is not None:
            part.counts = Counts(total=part.size, succeeded=counts.completed, failed=counts.failed)
        part.output_file_id, part.error_file_id = batch.output_file_id, batch.error_file_id
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        part.message = (
            "; ".join(f"{e.code}: {e.message}" + (f" (line {e.line})" if e.line else "") for e in errors[:3])
            or None
        )

    def results(self, client: Any, part: RemotePart) -> list[OutputLine]:
        lines: list[OutputLine] = []
        for file_id in (part.output_file_id, part.error_file_id):
            if not file_id:
                continue
            doing = f"download file {file_id}"
            with _api_errors(doing):
                text = client.files.content(file_id).text
            try:
                lines.extend(ln for raw in text.splitlines() if (ln := parse_output_line(raw)) is not None)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise unexpected_line(PROVIDER, doing, exc) from None
        return lines

    def missing_line(self, part: RemotePart, custom_id: str) -> OutputLine:
        if part.status == "expired":
            return error_line(
                custom_id,
                "batch_expired",
                "This request could not be executed before the completion window expired.",
                part.remote_id or "",
            )
        if part.status == "cancelled":
            return error_line(
                custom_id,
                "batch_cancelled",
                "the batch was cancelled before this request ran",
                part.remote_id or "",
            )
        reason = part.message or "the batch failed"
        return error_line(custom_id, "batch_failed", reason, part.remote_id or "")

    def cancel_part(self, client: Any, part: RemotePart) -> None:
        doing = f"cancel batch {part.remote_id}"
        with _api_errors(doing):
            part.status = read_answer(client.batches.cancel(part.remote_id), Batch, PROVIDER, doing).status

    def part_state(self, part: RemotePart) -> str:
        return part.status or "failed"


def _api_errors(doing: str) -> Any:
    import openai

    return sdk_errors(openai, PROVIDER, "OPENAI_API_KEY", doing)
