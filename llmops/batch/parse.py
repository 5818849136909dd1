"""Read and validate a whole batch input file before anything is sent.

Every bad line is reported (line number, field, reason); one bad line means nothing is submitted.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmops.batch.convert import chat_to_anthropic, plain_to_request
from llmops.batch.models import CUSTOM_ID_PATTERN, ENDPOINTS, ChatUrl, PlainLine, RequestLine
from llmops.errors import Problem, ProfileProblems, UsageError
from llmops.profiles.schema import BatchLimits

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


def _pydantic_problems(exc: ValidationError, where: str, number: int, prefix: str = "") -> list[Problem]:
    out = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        msg = error["msg"]
        if error["type"] == "extra_forbidden":
            msg = "unknown field"
        elif error["type"] == "literal_error":
            msg = f"{msg} (got {error.get('input')!r})"
        out.append(Problem(where, number, f"{prefix}{loc}" if loc else None, msg))
    return out


def _decode(raw: bytes, where: str, number: int) -> tuple[Any, Problem | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Problem(where, number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, Problem(where, number, None, f"not valid JSON: {exc.msg} (column {exc.colno})")


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
    if not path.is_file():
        raise UsageError(f"input file '{path}' not found", hint="give a JSONL file of batch requests")
    where = str(path)
    problems: list[Problem] = []
    parsed = ParsedInput(path=path, sha256=file_hash(path))
    seen: dict[str, int] = {}
    defaults = dict(sampling or {})
    if max_tokens is not None:
        defaults["max_tokens"] = max_tokens
    first_url: tuple[str, int] | None = None
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            data, problem = _decode(raw, where, number)
            if problem:
                problems.append(problem)
                continue
            if not isinstance(data, dict):
                problems.append(
                    Problem(where, number, None, f"expected a JSON object, got {type(data).__name__}")
                )
                continue
            try:
                if {"url", "body", "method"} & data.keys():
                    request = RequestLine.model_validate(data)
                elif {"prompt", "messages"} & data.keys():
                    plain = PlainLine.model_validate(data)
                    if (plain.prompt is None) == (plain.messages is None):
                        problems.append(
                            Problem(where, number, None, "give exactly one of prompt or messages")
                        )
                        continue
                    request = plain_to_request(plain, number, model=model, defaults=defaults)
                else:
                    problems.append(
                        Problem(
                            where,
                            number,
                            None,
                            "neither a batch request line (custom_id, method, "
                            "url, body) nor a plain line (prompt or messages)",
                        )
                    )
                    continue
            except ValidationError as exc:
                problems.extend(_pydantic_problems(exc, where, number))
                continue
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
    if problems:
        raise BatchInputProblems(problems)
    return parsed


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
