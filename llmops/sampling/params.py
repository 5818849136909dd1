"""The sampling parameters llmops sends: type, valid range and what each does (from the inference guide)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmops.errors import UsageError


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # float, int or list (of strings)
    low: float | None = None
    low_open: bool = False  # True: the value must be strictly above `low`
    high: float | None = None
    high_open: bool = False
    meaning: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def range_text(self) -> str:
        if self.low is not None and self.high is not None:
            lo = "(" if self.low_open else "["
            hi = ")" if self.high_open else "]"
            return f"in {lo}{self.low:g}, {self.high:g}{hi}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return "any integer" if self.kind is int else "any value"


PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param(
            "temperature",
            float,
            0,
            meaning="divides the logits before softmax: 0 always picks the likeliest token, above 1 flattens",
        ),
        Param(
            "top_p",
            float,
            0,
            True,
            1,
            meaning="samples from the smallest set of tokens whose probabilities add up to p",
        ),
        Param("top_k", int, 1, meaning="samples from the k likeliest tokens only"),
        Param(
            "frequency_penalty",
            float,
            -2,
            False,
            2,
            meaning="subtracts count x penalty from the logit of each token already generated",
        ),
        Param(
            "presence_penalty",
            float,
            -2,
            False,
            2,
            meaning="subtracts the penalty once from every token already generated",
        ),
        Param(
            "repetition_penalty",
            float,
            0,
            True,
            meaning="divides the logits of tokens already seen (1 = off; vLLM and llama.cpp only)",
        ),
        Param("stop", list, meaning="strings that end the answer (not included in it)"),
        Param("seed", int, meaning="seeds the sampler: with temperature 0, asks for repeatable answers"),
        Param("max_tokens", int, 1, meaning="the longest answer, in tokens"),
    )
}

# The sampling fields of a request body (max_tokens is the answer's length, set apart by request builders).
SAMPLING_FIELDS = tuple(n for n in PARAMS if n != "max_tokens")
# Parameters a request can also vary in `--compare`, beyond the sampling ones.
COMPARABLE = (*PARAMS, "preset")


def check_value(name: str, value: Any, *, source: str | None = None) -> None:
    """Raise UsageError (exit 2) naming the flag and the valid range when `value` is outside it."""
    p = PARAMS[name]
    where = source or p.flag
    if p.kind is list:
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise UsageError(
                f"{where}: stop sequences must be non-empty strings", hint="e.g. --stop '\\n\\n'"
            )
        return
    if p.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"{where} {value!r} is not an integer", hint=f"{p.name} must be {p.range_text()}")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise UsageError(f"{where} {value} is not a finite number", hint=f"{p.name} must be {p.range_text()}")
    too_low = p.low is not None and (v <= p.low if p.low_open else v < p.low)
    too_high = p.high is not None and (v >= p.high if p.high_open else v > p.high)
    if too_low or too_high:
        raise UsageError(f"{where} {value:g} is out of range", hint=f"{p.name} must be {p.range_text()}")


def parse_value(name: str, text: str, *, source: str | None = None) -> Any:
    """A value given as text (a --compare list, an environment variable), typed and range-checked."""
    p = PARAMS[name]
    where = source or p.flag
    text = text.strip()
    if p.kind is list:
        value: Any = [text]
    else:
        try:
            value = int(text) if p.kind is int else float(text)
        except ValueError:
            kind = "an integer" if p.kind is int else "a number"
            raise UsageError(
                f"{where} '{text}' is not {kind}", hint=f"{p.name} must be {p.range_text()}"
            ) from None
    check_value(name, value, source=where)
    return value
