"""Perplexity of a causal LM on a held-out text: exp(mean negative log-likelihood per predicted token).

The text is cut into non-overlapping windows of `seq_len` tokens; every token but the first of each
window is predicted, and the mean is taken over all predicted tokens (not over windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmops.progress import NullProgress, ProgressReporter


@dataclass(frozen=True)
class Perplexity:
    value: float
    tokens: int
    windows: int
    seq_len: int


def window_bounds(n_tokens: int, seq_len: int, max_windows: int | None = None) -> list[tuple[int, int]]:
    """[start, end) of non-overlapping windows; a last short window is kept when it predicts >= 16 tokens."""
    bounds = [(s, min(s + seq_len, n_tokens)) for s in range(0, n_tokens, seq_len)]
    bounds = [(s, e) for s, e in bounds if e - s >= min(seq_len, 17)]
    return bounds[:max_windows] if max_windows else bounds


def perplexity_from_nll(total_nll: float, predicted: int) -> float:
    return math.exp(total_nll / predicted)


def perplexity(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    seq_len: int = 512,
    max_windows: int | None = None,
    progress: ProgressReporter | None = None,
) -> Perplexity:
    """Perplexity of `model` on `text`; runs on the model's device, no gradients."""
    import torch

    progress = progress or NullProgress()
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    bounds = window_bounds(len(ids), seq_len, max_windows)
    if not bounds:
        raise ValueError(f"the evaluation text has {len(ids)} tokens: too short for perplexity")
    device = next(model.parameters()).device
    total, predicted = 0.0, 0
    progress.start(len(bounds), "perplexity")
    try:
        with torch.inference_mode():
            for start, end in bounds:
                window = ids[start:end].unsqueeze(0).to(device)
                logits = model(input_ids=window, use_cache=False).logits.float()
                nll = torch.nn.functional.cross_entropy(logits[0, :-1], window[0, 1:], reduction="sum")
                total += float(nll)
                predicted += end - start - 1
                progress.update(1, ppl=f"{perplexity_from_nll(total, predicted):.2f}")
    finally:
        progress.finish()
    return Perplexity(perplexity_from_nll(total, predicted), predicted, len(bounds), seq_len)
