"""Pydantic models for the batch output lines and the job record (input lines: `llmops.prompts`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt

from llmops.profiles.schema import StrictModel

ChatUrl = "/v1/chat/completions"
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
JobState = Literal["running", "completed", "failed", "cancelling", "cancelled", "expired", "interrupted"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "expired"})
CUSTOM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ResponsePart(StrictModel):
    status_code: int
    request_id: str | None = None
    body: dict[str, Any] | None = None


class ErrorPart(StrictModel):
    code: str | None = None
    message: str


class OutputLine(StrictModel):
    """One line of the OpenAI batch output format; every backend's results are written this way."""

    id: str
    custom_id: str
    response: ResponsePart | None = None
    error: ErrorPart | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.response is not None and 200 <= self.response.status_code < 300


class Counts(StrictModel):
    total: NonNegativeInt = 0
    succeeded: NonNegativeInt = 0
    failed: NonNegativeInt = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


class RemotePart(StrictModel):
    """One provider-side batch: a job over a provider's limits has several."""

    index: int
    first: int = Field(description="index of its first request in the input")
    size: int
    remote_id: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    status: str | None = None
    counts: Counts = Field(default_factory=Counts)
    message: str | None = Field(default=None, description="why the provider failed it, when it did")


class Usage(StrictModel):
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0


class Job(StrictModel):
    """What the job store keeps about a job. Never a key: only the name of the variable holding it."""

    id: str
    name: str | None = None
    backend: Literal["openai", "anthropic", "local"]
    provider: str
    model: str | None = None
    input: str
    input_hash: str
    url: str = ChatUrl
    state: JobState = "running"
    counts: Counts = Field(default_factory=Counts)
    base_url: str | None = Field(default=None, description="without credentials: they are never stored")
    base_url_auth: bool = Field(default=False, description="the base URL had credentials (kept in memory)")
    api_key_env: str | None = None
    concurrency: int = 8
    timeout_s: float = 300.0
    max_retries: int = 6
    backoff_s: float = 1.0
    endpoint_wait_s: float = 10.0
    rpm: int | None = None
    tpm: int | None = None
    parts: list[RemotePart] = Field(default_factory=list)
    output: str | None = Field(default=None, description="where the user asked for the results")
    output_force: bool = Field(default=False, description="--force: the output may replace a file")
    output_written: bool = False
    estimate_usd: float | None = None
    actual_usd: float | None = None
    usage: Usage = Field(default_factory=Usage)
    prices: tuple[float, float, float] | None = Field(
        default=None, description="input/1M, output/1M, discount"
    )
    error: str | None = None
    cancel_requested: bool = False
    worker_pid: int | None = None
    created_at: float
    updated_at: float
    ended_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

    def summary(self) -> dict[str, Any]:
        """The fields `list --json` and `submit --json` print."""
        return {
            "id": self.id,
            "name": self.name,
            "backend": self.backend,
            "provider": self.provider,
            "model": self.model,
            "input": self.input,
            "state": self.state,
            "counts": self.counts.model_dump(),
            "remote_ids": [p.remote_id for p in self.parts if p.remote_id],
            "estimate_usd": self.estimate_usd,
            "actual_usd": self.actual_usd,
            "output": self.output,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "error": self.error,
        }
