"""Cost before (an estimate) and after (from the usage the provider reports). Pure functions."""

from __future__ import annotations

import json
from typing import Any

from llmops.prompts import content_text

CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 256
ESTIMATE_NOTE = "estimate: ~4 characters per input token, outputs at max_tokens (or 256 when unset)"


def estimate_tokens(body: dict[str, Any]) -> tuple[int, int]:
    """(input, output) tokens of one request, roughly: characters/4 in, max_tokens out."""
    if "messages" in body:
        text = "".join(content_text(m.get("content")) for m in body["messages"] if isinstance(m, dict))
    else:
        text = json.dumps(body.get("prompt", body.get("input", "")))
    out = body.get("max_tokens") or body.get("max_completion_tokens") or DEFAULT_OUTPUT_TOKENS
    return max(1, len(text) // CHARS_PER_TOKEN), int(out)


def price(
    input_tokens: int, output_tokens: int, *, input_per_1m: float, output_per_1m: float, discount: float
) -> float:
    """USD for these tokens at list price per 1M, less the batch discount."""
    return (input_tokens * input_per_1m + output_tokens * output_per_1m) / 1e6 * (1 - discount)
