"""The pure arithmetic: KV bytes per token, parameter counts, quantized weight bytes, the reserve."""

from __future__ import annotations

import pytest

from llmops.plan import memory as mem
from llmops.profiles.schema import Architecture

LLAMA_8B = Architecture(
    num_layers=32,
    hidden_size=4096,
    num_attention_heads=32,
    num_kv_heads=8,
    head_dim=128,
    vocab_size=128256,
    intermediate_size=14336,
)
LLAMA_70B = Architecture(
    num_layers=80,
    hidden_size=8192,
    num_attention_heads=64,
    num_kv_heads=8,
    head_dim=128,
    vocab_size=128256,
    intermediate_size=28672,
)
# DeepSeek-V2-Lite: MLA with kv_lora_rank 512 and a 64-wide rope key
DEEPSEEK_V2_LITE = Architecture(
    num_layers=27,
    hidden_size=2048,
    num_attention_heads=16,
    num_kv_heads=16,
    vocab_size=102400,
    intermediate_size=10944,
    kv_lora_rank=512,
    qk_rope_head_dim=64,
    num_experts=64,
    num_experts_per_tok=6,
    moe_intermediate_size=1408,
)


def per_token(arch: Architecture, tp: int = 1, pp: int = 1, elem: float = 2) -> float:
    return mem.layers_per_stage(arch.num_layers, pp) * mem.kv_bytes_per_token_per_layer(arch, tp, elem)


def test_kv_bytes_per_token_match_the_known_figures() -> None:
    assert per_token(LLAMA_8B) == 128 * 1024  # 128 KiB/token in bf16
    assert per_token(LLAMA_70B) == 320 * 1024
    assert per_token(LLAMA_70B, tp=4) == 80 * 1024
    assert per_token(LLAMA_70B, tp=4, elem=1) == 40 * 1024  # fp8 KV cache


def test_kv_heads_are_replicated_when_tp_exceeds_them() -> None:
    assert per_token(LLAMA_70B, tp=16) == per_token(LLAMA_70B, tp=8)  # max(1, 8 // 16) = 1 head per GPU


def test_pipeline_parallel_splits_layers() -> None:
    assert per_token(LLAMA_70B, tp=2, pp=2) == per_token(LLAMA_70B, tp=2) / 2
    assert mem.layers_per_stage(30, 4) == 8  # the largest stage decides


def test_mla_stores_one_latent_without_the_factor_two() -> None:
    assert per_token(DEEPSEEK_V2_LITE) == 27 * (512 + 64) * 2
    assert per_token(DEEPSEEK_V2_LITE, tp=4) == per_token(DEEPSEEK_V2_LITE)  # replicated on every GPU


def test_parameter_count_from_shapes() -> None:
    counts = mem.param_counts(LLAMA_8B)
    assert counts.total == pytest.approx(8.03e9, rel=0.005)
    tied = mem.param_counts(LLAMA_8B.model_copy(update={"tie_word_embeddings": True}))
    assert tied.lm_head == 0 and tied.total == pytest.approx(counts.total - 4096 * 128256)


def test_moe_counts_every_expert() -> None:
    mixtral = Architecture(
        num_layers=32,
        hidden_size=4096,
        num_attention_heads=32,
        num_kv_heads=8,
        vocab_size=32000,
        intermediate_size=14336,
        num_experts=8,
        num_experts_per_tok=2,
    )
    assert mem.param_counts(mixtral).total == pytest.approx(46.7e9, rel=0.01)  # Mixtral 8x7B: 46.7 B


def test_quantized_bytes_keep_embeddings_16_bit() -> None:
    counts = mem.param_counts(LLAMA_8B)
    emb, head, body = mem.weight_bytes(counts, 2, "awq")
    assert emb == head == 4096 * 128256 * 2
    assert body == pytest.approx(counts.body * (0.5 + 2.5 / 128))  # 4-bit + fp16 scale + 4-bit zero per 128
    _, _, fp8_body = mem.weight_bytes(counts, 2, "fp8")
    assert fp8_body == counts.body


def test_activation_peak_grows_with_batched_tokens_and_shrinks_with_tp() -> None:
    small = mem.activation_peak_bytes(LLAMA_8B, tp=1, num_tokens=2048, num_seqs=1, act_bytes=2)
    big = mem.activation_peak_bytes(LLAMA_8B, tp=1, num_tokens=20000, num_seqs=1, act_bytes=2)
    assert big == pytest.approx(small * 20000 / 2048)
    assert mem.activation_peak_bytes(LLAMA_8B, tp=4, num_tokens=20000, num_seqs=1, act_bytes=2) < big


def test_kv_tokens_are_whole_blocks() -> None:
    assert mem.kv_cache_tokens(100 * 128 * 1024 + 5, 128 * 1024) == 96
    assert mem.kv_cache_tokens(-1.0, 1024) == 0


def test_vllm_batch_defaults() -> None:
    assert mem.default_batched_tokens(79.19, "NVIDIA H100 80GB HBM3") == (8192, 1024)
    assert mem.default_batched_tokens(79.15, "NVIDIA A100-SXM4-80GB") == (2048, 256)
    assert mem.default_batched_tokens(23.6, "NVIDIA GeForce RTX 4090") == (2048, 256)
