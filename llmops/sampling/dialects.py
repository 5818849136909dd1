"""Which sampling parameters each kind of endpoint honours, under which field name, within which range.

Sending a parameter an API does not know is not harmless: OpenAI rejects `top_k` with a 400, and
llama-cpp-python's server silently ignores `repetition_penalty` (it reads `repeat_penalty`). So llmops
translates the names, and refuses (or drops, for values that came from a preset or a profile) the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.errors import UsageError
from llmops.sampling.params import PARAMS

_ALL = frozenset(PARAMS)
_OPENAI = _ALL - {"top_k", "repetition_penalty"}


@dataclass(frozen=True)
class Dialect:
    name: str
    label: str  # for messages: "the OpenAI API", "llama.cpp's server"
    endpoint: str = "chat"  # the bench endpoint kind that speaks it: chat | anthropic
    supported: frozenset[str] = _ALL
    renames: Mapping[str, str] = field(default_factory=dict)  # llmops name -> the API's field name
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # tighter than PARAMS
    max_stop: int | None = None
    logprobs: bool | None = None  # True returns them, False cannot, None: ask and see
    max_top_logprobs: int = 20


DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "openai",
            "the OpenAI API",
            supported=_OPENAI,
            ranges={"temperature": (0, 2)},
            max_stop=4,
            logprobs=True,
        ),
        Dialect(
            "google", "Gemini's OpenAI-compatible API", supported=_OPENAI, ranges={"temperature": (0, 2)}
        ),
        Dialect(
            "anthropic",
            "the Anthropic Messages API",
            endpoint="anthropic",
            supported=frozenset({"temperature", "top_p", "top_k", "stop", "max_tokens"}),
            ranges={"temperature": (0, 1)},
            logprobs=False,
        ),
        Dialect("vllm", "vLLM's OpenAI server", logprobs=True),
        Dialect("sglang", "SGLang's OpenAI server", logprobs=True),
        Dialect("trtllm", "trtllm-serve's OpenAI server", logprobs=True),
        Dialect(
            "llamacpp",
            "llama.cpp's server",
            renames={"repetition_penalty": "repeat_penalty"},
            logprobs=True,
        ),
        Dialect("openai-compatible", "this OpenAI-compatible endpoint"),
    )
}


def dialect_for_engine(engine: str) -> Dialect:
    """The dialect of a serving engine's OpenAI server (vllm, llamacpp, sglang, trtllm)."""
    return DIALECTS.get(engine, DIALECTS["openai-compatible"])


def dialect_for_provider(api: str) -> Dialect:
    """The dialect of a provider profile's `api:` (openai, anthropic, google, openai-compatible)."""
    return DIALECTS.get(api, DIALECTS["openai-compatible"])


def dialect_for_url(url: str) -> Dialect:
    """A bare --target: the two public APIs by host name, anything else passes every parameter through."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].split(":")[0].lower()
    if host == "api.openai.com":
        return DIALECTS["openai"]
    if host == "api.anthropic.com":
        return DIALECTS["anthropic"]
    return DIALECTS["openai-compatible"]


def unsupported(dialect: Dialect, names: list[str]) -> list[str]:
    """The parameters among `names` this dialect does not accept."""
    return [n for n in names if n not in dialect.supported]


def wire_fields(dialect: Dialect, values: Mapping[str, object]) -> dict[str, object]:
    """The values under the API's own field names (repetition_penalty -> repeat_penalty for llama.cpp)."""
    return {dialect.renames.get(k, k): v for k, v in values.items()}


def show_value(value: Any) -> str:
    """A sampling value as a note or a table shows it: 0.7, 40, 'a'|'b'."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "|".join(repr(v) for v in value)
    return str(value)


def fit_value(
    dialect: Dialect, name: str, value: Any, *, explicit: bool, source: str
) -> tuple[Any, str | None]:
    """One sampling value for this API: (what to send, None when nothing; a note when it was dropped or
    clamped). A value the user set for this run (`explicit`) is refused with exit 2 instead; one inherited
    from a preset or a profile (`source` says which) adapts to the endpoint."""
    flag = PARAMS[name].flag
    if name not in dialect.supported:
        if explicit:
            raise UsageError(
                f"{flag}: {dialect.label} does not support {name}; nothing was sent",
                hint=f"drop {flag} for this endpoint",
            )
        return (
            None,
            f"{name} {show_value(value)} (from {source}) not sent: {dialect.label} does not support it",
        )
    note = None
    if name in dialect.ranges:
        lo, hi = dialect.ranges[name]
        if not lo <= value <= hi:
            if explicit:
                raise UsageError(
                    f"{flag} {value:g} is out of range for {dialect.label}; nothing was sent",
                    hint=f"{name} must be in [{lo:g}, {hi:g}] there",
                )
            clamped = min(max(value, lo), hi)
            note = f"{name} {value:g} (from {source}) sent as {clamped:g}: {dialect.label} allows [{lo:g}, {hi:g}]"
            value = clamped
    if name == "stop" and dialect.max_stop and len(value) > dialect.max_stop:
        raise UsageError(
            f"--stop: {dialect.label} takes at most {dialect.max_stop} stop sequences, got {len(value)}",
            hint="give fewer --stop values",
        )
    return value, note
