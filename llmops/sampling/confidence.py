"""Confidence from log-probabilities, as the inference guide computes it.

A token's probability is exp(logprob). The sequence confidence is exp(mean logprob) over the generated
tokens: the geometric mean of their probabilities, so one very unlikely token pulls it down without one
long answer being punished for its length. The guide's bands: above 0.8 the answer can be used
automatically, 0.5 to 0.8 it should be checked, below 0.5 a person should review it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

Band = Literal["automatic", "check", "human review"]
HIGH = 0.8
LOW = 0.5


def token_probability(logprob: float) -> float:
    return math.exp(logprob)


def confidence(logprobs: Sequence[float]) -> float | None:
    """exp(mean log-probability); None for no tokens."""
    if not logprobs:
        return None
    return math.exp(math.fsum(logprobs) / len(logprobs))


def perplexity(logprobs: Sequence[float]) -> float | None:
    """exp(-mean log-probability): the answer's perplexity under the model (1 / confidence)."""
    c = confidence(logprobs)
    return None if c is None or c == 0 else 1 / c


def band(probability: float) -> Band:
    """The guide's action for a confidence (or a single token's probability)."""
    if probability > HIGH:
        return "automatic"
    if probability >= LOW:
        return "check"
    return "human review"
