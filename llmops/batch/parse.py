"""Read and validate a whole batch input file before anything is sent.

Lines are read by the shared JSONL prompt parser (`llmops.prompts`); this module adds what a batch needs
on top: one endpoint per file, unique custom_ids, a model for every request, the provider's limits and,
for Anthropic, lines its Messages API can take. Every bad line is reported (line number, field, reason);
one bad line means nothing is submitted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.batch.convert import chat_to_anthropic, plain_to_request
from llmops.batch.models import CUSTOM_ID_PATTERN, ENDPOINTS, ChatUrl
from llmops.errors import Problem, ProfileProblems
from llmops.profiles.schema import BatchLimits
from llmops.prompts import PromptLine, RequestLine, read_prompt_file

REQUIRED_BODY_FIELD = {
    "/v1/chat/completions": "messages",
    "/v1/completions": "prompt",
    "/v1/embeddings": "input",
}


class BatchInputProblems(ProfileProblems):
    """Every problem in a batch input file, one per line (exit 2)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.hint = f"{len(problems)} problem(s); nothing was submitted"


@dataclass
class ParsedInput:
    path: Path
    requests: list[RequestLine] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    url: str = ChatUrl
    sha256: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_input(
    path: Path,
    *,
    backend: str,
    limits: BatchLimits,
    model: str | None = None,
    sampling: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    split: bool = True,
) -> ParsedInput:
    """Validate every line; raise BatchInputProblems listing all of them, or return the requests.

    `split=False` makes going over the provider's count or size limit an error instead of a reason to split.
    """
    read = read_prompt_file(path, what="input file")
    where = str(path)
    problems: list[Problem] = list(read.problems)
    parsed = ParsedInput(path=path, sha256=file_hash(path))
    seen: dict[str, int] = {}
    defaults = dict(sampling or {})
    if max_tokens is not None:
        defaults["max_tokens"] = max_tokens
    first_url: tuple[str, int] | None = None
    for entry in read.entries:
        number = entry.number
        request = (
            plain_to_request(entry.line, number, model=model, defaults=defaults)
            if isinstance(entry.line, PromptLine)
            else entry.line
        )
        line_problems = _check_request(
            request, backend=backend, model=model, max_tokens=max_tokens, where=where, number=number
        )
        if request.custom_id in seen:
            line_problems.append(
                Problem(
                    where,
                    number,
                    "custom_id",
                    f"'{request.custom_id}' already used on line {seen[request.custom_id]}",
                )
            )
        else:
            seen[request.custom_id] = number
        if request.url in ENDPOINTS:
            if first_url is None:
                first_url = (request.url, number)
            elif request.url != first_url[0]:
                line_problems.append(
                    Problem(
                        where,
                        number,
                        "url",
                        f"'{request.url}' differs from line "
                        f"{first_url[1]}'s '{first_url[0]}'; one batch has one endpoint",
                    )
                )
        size = len(request.model_dump_json().encode()) + 1
        if size > limits.max_bytes:
            line_problems.append(
                Problem(
                    where,
                    number,
                    None,
                    f"the request is {size} bytes, over the "
                    f"provider's limit of {limits.max_bytes} bytes per batch",
                )
            )
        if line_problems:
            problems.extend(line_problems)
            continue
        parsed.requests.append(request)
        parsed.sizes.append(size)
    if first_url:
        parsed.url = first_url[0]
    if not problems and not parsed.requests:
        problems.append(Problem(where, None, None, "no requests in the file"))
    if not split and not problems:
        problems.extend(_over_limits(parsed, limits, where))
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise BatchInputProblems(problems)
    return parsed


def _over_limits(parsed: ParsedInput, limits: BatchLimits, where: str) -> list[Problem]:
    """With --no-split: the file as a whole over the provider's count or size limit."""
    problems = []
    if len(parsed.requests) > limits.max_requests:
        problems.append(
            Problem(
                where,
                None,
                None,
                f"{len(parsed.requests)} requests, over the provider's "
                f"limit of {limits.max_requests} per batch (drop --no-split to split it)",
            )
        )
    if parsed.total_bytes > limits.max_bytes:
        problems.append(
            Problem(
                where,
                None,
                None,
                f"{parsed.total_bytes} bytes, over the provider's "
                f"limit of {limits.max_bytes} per batch (drop --no-split to split it)",
            )
        )
    return problems


def _check_request(
    request: RequestLine, *, backend: str, model: str | None, max_tokens: int | None, where: str, number: int
) -> list[Problem]:
    """Per-line checks that depend on the endpoint and the backend; fills in --model where missing."""
    problems: list[Problem] = []
    allowed = (ChatUrl,) if backend == "anthropic" else ENDPOINTS
    if request.url not in allowed:
        problems.append(
            Problem(
                where,
                number,
                "url",
                f"'{request.url}' is not a batch endpoint "
                f"{'for ' + backend + ' ' if backend == 'anthropic' else ''}"
                f"(use {', '.join(allowed)})",
            )
        )
        return problems
    if not request.body.get("model"):
        if model:
            request.body["model"] = model
        else:
            problems.append(
                Problem(where, number, "body.model", "missing; add it to the line or pass --model")
            )
    sets_max = "max_tokens" in request.body or "max_completion_tokens" in request.body
    if max_tokens is not None and request.url != "/v1/embeddings" and not sets_max:
        request.body["max_tokens"] = max_tokens
    needed = REQUIRED_BODY_FIELD[request.url]
    value = request.body.get(needed)
    if value is None or (isinstance(value, list | str) and not value):
        problems.append(Problem(where, number, f"body.{needed}", f"missing or empty; {request.url} needs it"))
    if backend == "anthropic":
        if not re.match(CUSTOM_ID_PATTERN, request.custom_id):
            problems.append(
                Problem(
                    where,
                    number,
                    "custom_id",
                    f"'{request.custom_id[:70]}' is not a valid "
                    "Anthropic custom_id (1-64 letters, digits, _ or -)",
                )
            )
        if not problems:
            try:
                chat_to_anthropic(request.body)
            except ValueError as exc:
                problems.append(Problem(where, number, None, str(exc)))
    return problems
