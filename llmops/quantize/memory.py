"""RAM pre-check: refuse before loading a model that cannot fit, from its parameter count."""

from __future__ import annotations

from llmops.errors import EnvironmentMissing
from llmops.profiles.schema import Architecture

GIB = 1024**3
OVERHEAD_BYTES = 1 * GIB  # the Python process, torch, tokenizers, calibration activations of a small model


def estimate_params(arch: Architecture) -> float:
    """Parameter count: the profile's figure, else from the layer shapes of a Llama-style decoder."""
    if arch.num_params:
        return arch.num_params
    h, hd = arch.hidden_size, arch.resolved_head_dim
    attn = h * arch.num_attention_heads * hd * 2 + h * arch.num_kv_heads * hd * 2
    inter = arch.intermediate_size or 4 * h
    experts = arch.num_experts or 1
    mlp = 3 * h * (arch.moe_intermediate_size or inter) * experts
    embed = arch.vocab_size * h * (1 if arch.tie_word_embeddings else 2)
    return float(arch.num_layers * (attn + mlp + 2 * h) + embed + h)


def required_ram_bytes(num_params: float, bytes_per_param: float, factor: float = 1.3) -> int:
    """Working-set estimate: weights at load precision, plus a margin for copies, plus fixed overhead."""
    return int(num_params * bytes_per_param * factor + OVERHEAD_BYTES)


def available_ram_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil comes with accelerate; fall back to /proc on Linux
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_ram(
    model_name: str, num_params: float, bytes_per_param: float, available: int | None = None
) -> int:
    """Raise (exit 3) when the estimate exceeds the available RAM; return the estimate."""
    need = required_ram_bytes(num_params, bytes_per_param)
    have = available if available is not None else available_ram_bytes()
    if need > have:
        raise EnvironmentMissing(
            f"quantizing '{model_name}' ({num_params / 1e9:.2f}B parameters) needs about "
            f"{need / GIB:.1f} GiB of RAM, but {have / GIB:.1f} GiB is available",
            hint="run it on a machine with more memory, or quantize a smaller model",
        )
    return need
