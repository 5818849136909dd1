"""The one JSONL prompt format, read by `llmops batch` and by `llmops bench --dataset jsonl:FILE`.

A line is either an OpenAI batch request line (`custom_id`, `method`, `url`, `body`) or a plain line
(`{"prompt": ...}` or `{"messages": [...]}` with optional sampling fields), so a batch input file is a
valid benchmark dataset and back. Every bad line is a `Problem` naming the file, the line and the field
(undecodable bytes included): callers report them all, exit 2, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from llmops.errors import NotFoundError, Problem, UsageError
from llmops.profiles.schema import StrictModel

MAX_PROBLEMS = 50  # a binary or wholly wrong file: the first ones say enough
REQUEST_KEYS = frozenset({"method", "url", "body"})  # any of them: the line means to be a request line
PLAIN_KEYS = frozenset({"prompt", "messages"})


class RequestLine(StrictModel):
    """One line of the OpenAI batch input format."""

    custom_id: str = Field(min_length=1, max_length=512)
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


class PromptLine(StrictModel):
    """The plain form: a prompt or a message list, with optional sampling fields."""

    custom_id: str | None = Field(default=None, min_length=1, max_length=512)
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    output_len: int | None = Field(
        default=None, ge=1, description="the output length in tokens: the same as max_tokens"
    )
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None

    @property
    def max_output(self) -> int | None:
        return self.max_tokens or self.output_len


Line = RequestLine | PromptLine


@dataclass
class Entry:
    number: int
    line: Line


@dataclass
class PromptFile:
    """A JSONL prompt file read whole: the good lines, and a problem for each bad one."""

    path: Path
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_prompt_file(path: Path, *, what: str = "prompt file") -> PromptFile:
    """Every line of a JSONL prompt file, validated; bad lines become problems (never an exception)."""
    if not path.exists():
        from llmops.paths import broken_link

        if why := broken_link(path):
            raise UsageError(f"{what} {path} is {why}", hint="fix or remove the link")
        raise NotFoundError(f"{what} {path} not found", hint="give the path of a JSONL file")
    if not path.is_file():
        raise UsageError(f"{what} {path} is not a file", hint="give the path of a JSONL file")
    out = PromptFile(path=path)
    where = str(path)
    for number, raw in _lines(path):
        if len(out.problems) >= MAX_PROBLEMS:
            out.problems.append(
                Problem(where, number, None, f"stopped reading after {MAX_PROBLEMS} problems")
            )
            break
        line, problems = parse_line(raw, where, number)
        if line is None:
            out.problems.extend(problems)
        else:
            out.entries.append(Entry(number, line))
    return out


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield number, raw


def parse_line(raw: bytes, where: str, number: int) -> tuple[Line | None, list[Problem]]:
    """One line as a RequestLine or a PromptLine, or the problems that make it neither."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Problem(where, number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}); a binary file?")
        ]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [Problem(where, number, None, f"not valid JSON: {exc.msg} (column {exc.colno})")]
    if not isinstance(data, dict):
        return None, [Problem(where, number, None, f"expected a JSON object, got {type(data).__name__}")]
    model: type[RequestLine] | type[PromptLine]
    if REQUEST_KEYS & data.keys():
        model = RequestLine
    elif PLAIN_KEYS & data.keys():
        model = PromptLine
    else:
        return None, [
            Problem(
                where,
                number,
                None,
                "neither a batch request line (custom_id, method, url, body) nor a plain line "
                "(prompt or messages)",
            )
        ]
    try:
        line = model.model_validate(data)
    except ValidationError as exc:
        return None, validation_problems(exc, model, where, number)
    if isinstance(line, PromptLine) and (line.prompt is None) == (line.messages is None):
        return None, [Problem(where, number, None, "give exactly one of prompt or messages")]
    return line, []


def validation_problems(exc: ValidationError, model: Any, where: str, number: int) -> list[Problem]:
    """A pydantic error on one line as problems, through the project's one field-message mapping."""
    from llmops.errormap import field_message, field_path

    return [
        Problem(where, number, field_path(tuple(e["loc"])) or None, field_message(e, model))
        for e in exc.errors(include_url=False)
    ]


def line_text(line: Line) -> tuple[str, list[dict[str, Any]] | None]:
    """The prompt text and chat messages of a line (request lines: from the body)."""
    if isinstance(line, PromptLine):
        messages, prompt = prompt_messages(line), None
        if line.system is None and line.prompt is not None:
            messages, prompt = None, line.prompt
    else:
        messages, prompt = line.body.get("messages"), line.body.get("prompt")
    if prompt is not None:
        return str(prompt), messages
    return "\n".join(content_text(m.get("content")) for m in messages or [] if isinstance(m, dict)), messages


def prompt_messages(line: PromptLine) -> list[dict[str, Any]]:
    """A plain line as chat messages: its messages (or its prompt as a user turn), its system first."""
    messages = (
        list(line.messages) if line.messages is not None else [{"role": "user", "content": line.prompt}]
    )
    if line.system is not None:
        messages.insert(0, {"role": "system", "content": line.system})
    return messages


def line_max_tokens(line: Line) -> int | None:
    """The output length a line asks for, if any."""
    if isinstance(line, PromptLine):
        return line.max_output
    value = line.body.get("max_tokens") or line.body.get("max_completion_tokens")
    return int(value) if isinstance(value, int) else None


def content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)
