"""Group size for group-wise weight quantization: it must divide every quantized layer's input features.

SmolLM2-135M has hidden size 576, which 128 does not divide (llm-compressor refuses it deep inside);
so choose the largest common size that fits, or refuse the user's choice up front with a suggestion.
"""

from __future__ import annotations

from collections.abc import Iterable

from llmops.errors import UsageError
from llmops.profiles.schema import Architecture

CANDIDATES = (128, 64, 32, 16)


def quantized_in_features(arch: Architecture) -> set[int]:
    """Input features of the Linear layers GPTQ quantizes in a Llama-style decoder (lm_head is kept)."""
    attn_out = arch.num_attention_heads * arch.resolved_head_dim
    features = {arch.hidden_size, attn_out}  # q/k/v and gate/up take hidden; o_proj takes heads*head_dim
    if arch.intermediate_size:
        features.add(arch.intermediate_size)  # down_proj
    if arch.moe_intermediate_size:
        features.add(arch.moe_intermediate_size)
    return features


def largest_dividing(in_features: Iterable[int], candidates: Iterable[int] = CANDIDATES) -> int | None:
    """The largest candidate that divides every input size; None when none does (use per-channel)."""
    sizes = set(in_features)
    return next((g for g in candidates if all(n % g == 0 for n in sizes)), None)


def choose_group_size(in_features: Iterable[int], requested: int | None) -> int | None:
    """The user's group size when it divides every layer (else refuse); when none given, the largest fit."""
    sizes = sorted(set(in_features))
    if requested is None:
        return largest_dividing(sizes)
    bad = [n for n in sizes if n % requested]
    if bad:
        suggestion = largest_dividing(sizes)
        fix = (
            f"use --group-size {suggestion}" if suggestion else "leave --group-size out (per-channel scales)"
        )
        raise UsageError(
            f"--group-size {requested} does not divide the input size of every quantized layer "
            f"({', '.join(map(str, bad))} {_not_multiple(len(bad))} of {requested})",
            hint=f"{fix}, which divides {', '.join(map(str, sizes))}",
        )
    return requested


def _not_multiple(count: int) -> str:
    return "is not a multiple" if count == 1 else "are not multiples"
