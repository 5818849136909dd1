"""Pure memory arithmetic: weight bytes, KV bytes per token, and vLLM's non-KV reserve.

Every function takes plain numbers or an `Architecture` and returns bytes; nothing here reads files.
The reserve model follows vLLM's start-up profiling, per vLLM version (docs/plan.md has the derivation
and the logs it is calibrated on):

    budget  = gpu_memory_utilization x total memory as CUDA reports it
    KV      = budget - weights - activation peak of a dummy forward pass - non-torch memory
    tokens  = floor(KV / (block_size x KV bytes per token)) x block_size
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmops.profiles.schema import Architecture

GIB = 1024**3
BLOCK_SIZE = 16  # vLLM's default KV block size (tokens per block) on CUDA

# Bytes per stored parameter of a quantized linear layer, group/block scales included.
# 4-bit GPTQ/AWQ (w4a16): 4-bit weights + one fp16 scale and one packed 4-bit zero per group of 128.
# bnb-4bit (NF4, transformers' default: blocksize 64, fp32 absmax, no double quantization).
# 8-bit formats: one byte per weight; per-channel scales are negligible (out_features x 4 bytes).
GROUP_SIZE = 128
LINEAR_BYTES: dict[str, float] = {
    "fp8": 1.0,
    "int8": 1.0,
    "w8a8": 1.0,
    "bnb-8bit": 1.0,
    "w4a16": 0.5 + (2 + 0.5) / GROUP_SIZE,
    "gptq": 0.5 + (2 + 0.5) / GROUP_SIZE,
    "awq": 0.5 + (2 + 0.5) / GROUP_SIZE,
    "compressed-tensors": 0.5 + (2 + 0.5) / GROUP_SIZE,
    "bnb-4bit": 0.5 + 4 / 64,
}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

# GGUF quantization types: bits per weight including block scales (llama.cpp's ggml type sizes;
# K-quant "_M"/"_S" mixes are the averages llama.cpp's quantize tool prints).
GGUF_BITS: dict[str, float] = {
    "F32": 32,
    "F16": 16,
    "BF16": 16,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_1": 6.0,
    "Q5_0": 5.5,
    "Q5_K_M": 5.69,
    "Q5_K_S": 5.54,
    "Q4_1": 5.0,
    "Q4_0": 4.5,
    "Q4_K_M": 4.85,
    "Q4_K_S": 4.58,
    "Q3_K_L": 4.27,
    "Q3_K_M": 3.91,
    "Q3_K_S": 3.5,
    "Q2_K": 2.63,
    "IQ4_XS": 4.25,
    "IQ4_NL": 4.5,
}


@dataclass(frozen=True)
class ParamCounts:
    """Parameters split the way memory differs: embeddings and lm_head stay 16-bit when quantized."""

    embedding: float
    lm_head: float  # 0 when tied to the embedding
    body: float  # every transformer layer (all experts counted)

    @property
    def total(self) -> float:
        return self.embedding + self.lm_head + self.body


def layer_params(arch: Architecture) -> float:
    """Parameters of one transformer layer from its shapes (attention + MLP or all experts + norms)."""
    h, hd = arch.hidden_size, arch.resolved_head_dim
    attn = h * arch.num_attention_heads * hd * 2 + h * arch.num_kv_heads * hd * 2
    if arch.num_experts:
        inter = arch.moe_intermediate_size or arch.intermediate_size or 4 * h
        mlp = arch.num_experts * 3 * h * inter + h * arch.num_experts  # experts + router
    else:
        mlp = 3 * h * (arch.intermediate_size or 4 * h)  # gated MLP: gate, up, down
    return attn + mlp + 2 * h


def param_counts(arch: Architecture, total: float | None = None) -> ParamCounts:
    """Split the parameter count; `total` (from the profile or a checkpoint) wins over the shapes."""
    embedding = float(arch.vocab_size * arch.hidden_size)
    lm_head = 0.0 if arch.tie_word_embeddings else embedding
    total = total or arch.num_params
    body = total - embedding - lm_head if total else arch.num_layers * layer_params(arch) + arch.hidden_size
    return ParamCounts(embedding, lm_head, max(body, 0.0))


def weight_bytes(params: ParamCounts, dtype_bytes: int, quantization: str) -> tuple[float, float, float]:
    """(embedding, lm_head, body) bytes: quantization applies to the body's linear layers only."""
    body_bytes = LINEAR_BYTES.get(quantization, dtype_bytes)
    return params.embedding * dtype_bytes, params.lm_head * dtype_bytes, params.body * body_bytes


def kv_bytes_per_token_per_layer(arch: Architecture, tp: int, kv_bytes: float) -> float:
    """KV bytes one token takes in one layer on one GPU.

    GQA/MHA: K and V (factor 2) for max(1, kv_heads // tp) heads; heads are replicated when tp > kv_heads.
    MLA (DeepSeek): one compressed latent (kv_lora_rank + qk_rope_head_dim), no factor 2, replicated per GPU.
    """
    if arch.is_mla:
        return ((arch.kv_lora_rank or 0) + (arch.qk_rope_head_dim or 0)) * kv_bytes
    heads = max(1, arch.num_kv_heads // tp)
    return 2 * heads * arch.resolved_head_dim * kv_bytes


def layers_per_stage(num_layers: int, pp: int) -> int:
    """The largest pipeline stage's layer count (vLLM splits layers as evenly as it can)."""
    return math.ceil(num_layers / pp)


# --- the non-KV reserve (vLLM's profiling run) ---------------------------------------------------


@dataclass(frozen=True)
class Reserve:
    """vLLM's non-torch memory per GPU from one version on: the CUDA context's leftovers and cuBLAS
    workspaces, plus NCCL and custom all-reduce buffers when tp x pp > 1 (docs/plan.md cites the logs)."""

    since: str  # the first vLLM version it describes
    single_gib: float  # tp x pp = 1
    parallel_gib: float  # tp x pp > 1
    source: str


RESERVES: tuple[Reserve, ...] = (
    Reserve(
        "0.6",
        0.35,
        0.75,
        "V0 logs: 0.35 GiB at TP 1 (vllm#10517); 0.20 to 3.58 GiB under TP (vllm#13061, #14447, #10511)",
    ),
    Reserve(
        "0.19",
        0.25,
        2.1,
        "v0.19 H100 start-up logs: 0.25 GiB at TP 1, about 2.1 GiB per GPU at TP 2 and 4 (issue 11)",
    ),
)
NEWEST_VLLM = RESERVES[-1].since


def version_tuple(version: str) -> tuple[int, ...]:
    """'v0.19.1rc2+cu130' -> (0, 19, 1): the numeric release parts of a version string."""
    import re

    match = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    if not match:
        from llmops.errors import UsageError

        raise UsageError(
            f"cannot read the vLLM version {version!r}", hint=f"give a version such as {NEWEST_VLLM}"
        )
    return tuple(int(part) for part in match.group(1).split("."))


def reserve_for(version: str | None) -> Reserve:
    """The reserve of the newest calibrated version not after `version` (the newest when None)."""
    if version is None:
        return RESERVES[-1]
    wanted = version_tuple(version)
    found = RESERVES[0]
    for reserve in RESERVES:
        if version_tuple(reserve.since) <= wanted:
            found = reserve
    return found


SAMPLER_COPIES = 3  # fp32 logits, softmax probabilities and log-probabilities of the dummy sampler run


def activation_peak_bytes(
    arch: Architecture, *, tp: int, num_tokens: int, num_seqs: int, act_bytes: int
) -> float:
    """Peak PyTorch memory of vLLM's profiling run on one GPU.

    vLLM runs one dummy forward pass of `max_num_batched_tokens` tokens, then a dummy sampler pass over
    `max_num_seqs` rows of logits, and records the peak; the two phases do not overlap, so the peak is the
    larger. The forward peak sits in one layer's MLP: the residual, the normed input and the output
    (3 x hidden) are alive with gate_up (2 x intermediate / tp) and its activation (intermediate / tp).
    MoE layers hold top-k copies of the expert intermediate. The sampler holds `num_seqs x vocab` logits
    in fp32 a few times over (logits, probabilities, log-probabilities).
    """
    inter = arch.intermediate_size or 4 * arch.hidden_size
    if arch.num_experts:
        inter = (arch.moe_intermediate_size or inter) * (arch.num_experts_per_tok or 2)
    forward = num_tokens * (3 * arch.hidden_size + 3 * inter / tp) * act_bytes
    sampler = min(num_seqs, num_tokens) * arch.vocab_size * 4 * SAMPLER_COPIES
    return max(forward, sampler)


def non_torch_bytes(tp: int, pp: int, version: str | None = None) -> float:
    """Memory vLLM counts as non-torch at `version`: library workspaces, and communication buffers
    under parallelism."""
    reserve = reserve_for(version)
    return (reserve.parallel_gib if tp * pp > 1 else reserve.single_gib) * GIB


def kv_cache_tokens(
    kv_bytes_available: float, kv_bytes_per_token: float, block_size: int = BLOCK_SIZE
) -> int:
    """Whole KV blocks that fit, in tokens (vLLM allocates blocks of `block_size` tokens)."""
    if kv_bytes_available <= 0 or kv_bytes_per_token <= 0:
        return 0
    return int(kv_bytes_available // (kv_bytes_per_token * block_size)) * block_size


def default_batched_tokens(gpu_memory_gib: float, gpu_model: str) -> tuple[int, int]:
    """vLLM V1's defaults for the OpenAI server: (max_num_batched_tokens, max_num_seqs).

    From vllm/engine/arg_utils.py (`_set_default_args`): GPUs with >= 70 GiB that are not A100 get
    8192 tokens and 1024 sequences; the rest 2048 tokens and 256 sequences.
    """
    if gpu_memory_gib >= 70 and "A100" not in gpu_model.upper():
        return 8192, 1024
    return 2048, 256


def llamacpp_compute_bytes(arch: Architecture, *, n_ctx: int, n_ubatch: int) -> float:
    """llama.cpp's CPU compute buffer for one micro-batch of `n_ubatch` tokens, in fp32.

    ggml's graph allocator reuses memory, so the buffer is the larger of two phases plus a few hidden-size
    rows: the output logits (vocab per token) or, without flash attention, the attention scores of every
    head against the whole context plus the mask. Checked against llama.cpp's own log for SmolLM2 at
    n_ctx 2048 and 8192 (tests/plan/test_llamacpp_real.py).
    """
    widest = max(arch.vocab_size, n_ctx * (arch.num_attention_heads + 1))
    return n_ubatch * (widest + 3 * arch.hidden_size) * 4
