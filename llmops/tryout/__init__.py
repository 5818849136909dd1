"""`llmops try`: send a prompt to a model, a provider or a gateway route and watch the answer stream.

Library use: `plan = resolve(TryFlags(...), workspace, catalog)` then `try_prompt(plan, observer)` ->
TryResult (every answer with its text, timings, tokens, cost, logprobs, and diversity per setting).
The sampling rules it applies (ranges, presets, dialects, confidence) live in `llmops.sampling`.
"""

from llmops.tryout.config import TryFlags, TryPlan, Variant, resolve
from llmops.tryout.run import Run, TryObserver, TryResult, request_body, try_prompt
from llmops.tryout.stream import Answer, TokenLogprob

__all__ = [
    "Answer",
    "Run",
    "TokenLogprob",
    "TryFlags",
    "TryObserver",
    "TryPlan",
    "TryResult",
    "Variant",
    "request_body",
    "resolve",
    "try_prompt",
]
