"""The planner against KV cache sizes that vLLM logged at start-up, as published in its issue tracker.

Each case names its source and the vLLM version that logged it (the non-torch reserve is per version). Where the log printed the available KV memory rather than the token count
(vLLM 0.6 printed `available_kv_cache_memory`), the logged tokens are that memory over the model's KV
bytes per token, which is how vLLM itself turns one into the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmops.plan import PlanRequest, make_plan
from llmops.plan import memory as mem
from llmops.profiles.schema import Architecture, CpuSpec, GpuSpec, ModelProfile, ModelSource, NodeProfile

from .test_memory import LLAMA_70B

LLAMA3_8B = Architecture(
    num_layers=32,
    hidden_size=4096,
    num_attention_heads=32,
    num_kv_heads=8,
    head_dim=128,
    vocab_size=128256,
    intermediate_size=14336,
    num_params=8.03e9,
    max_position_embeddings=131072,
    torch_dtype="bfloat16",
)
GIB = 2**30


@dataclass(frozen=True)
class Case:
    source: str
    gpu: str
    memory_gib: float  # total_gpu_memory as the log printed it
    request: PlanRequest
    logged_tokens: int


CASES = {
    # Llama-3.1-8B-Instruct, RTX 3090, vLLM 0.6 (V0, no chunked prefill: the profiling batch is max_model_len)
    # log: "total_gpu_memory=23.58GiB ... kv_cache_size=3.81GiB gpu_memory_utilization=0.90"
    #      "GPU blocks: 1952" (16-token blocks)
    "llama3.1-8b-rtx3090-20k": Case(
        "https://github.com/vllm-project/vllm/issues/10517 (kaspersiminski, 2024-12-02)",
        "NVIDIA GeForce RTX 3090",
        23.58,
        PlanRequest(
            gpu_memory_utilization=0.9,
            max_model_len=20000,
            max_num_batched_tokens=20000,
            max_num_seqs=256,
            vllm_version="0.6",
        ),
        1952 * 16,
    ),
    # same thread, max_model_len 29000: "maximum number of tokens that can be stored in KV cache (23648)"
    "llama3.1-8b-rtx3090-29k": Case(
        "https://github.com/vllm-project/vllm/issues/10517 (kaspersiminski, 2024-12-02)",
        "NVIDIA GeForce RTX 3090",
        23.58,
        PlanRequest(
            gpu_memory_utilization=0.9,
            max_model_len=29000,
            max_num_batched_tokens=29000,
            max_num_seqs=256,
            vllm_version="0.6",
        ),
        23648,
    ),
    # Meta-Llama-3-8B on H100, TP 1: "total_gpu_memory 79.22GiB ... available_kv_cache_memory 53.29GiB"
    "llama3-8b-h100-tp1": Case(
        "https://github.com/vllm-project/vllm/pull/10511 (youkaichao, 2024-12-14)",
        "NVIDIA H100 80GB HBM3",
        79.22,
        PlanRequest(
            tp=1,
            gpu_memory_utilization=0.9,
            max_model_len=8192,
            max_num_batched_tokens=8192,
            max_num_seqs=256,
            vllm_version="0.6",
        ),
        int(53.29 * GIB // (128 * 1024)),
    ),
    # same, TP 2: weights 7.48, non_torch 3.58, activation 1.26 GiB of 71.29 GiB -> 58.97 GiB of KV per GPU
    "llama3-8b-h100-tp2": Case(
        "https://github.com/vllm-project/vllm/pull/10511 (youkaichao, 2024-12-14)",
        "NVIDIA H100 80GB HBM3",
        79.22,
        PlanRequest(
            tp=2,
            gpu_memory_utilization=0.9,
            max_model_len=8192,
            max_num_batched_tokens=8192,
            max_num_seqs=256,
            vllm_version="0.6",
        ),
        int((71.29 - 7.48 - 3.58 - 1.26) * GIB // (64 * 1024)),
    ),
}


def _node(case: Case) -> NodeProfile:
    return NodeProfile(
        name="calibration",
        gpu=GpuSpec(model=case.gpu, count=8, memory_gib=case.memory_gib),
        cpu=CpuSpec(cores=32, ram_gib=256),
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_predicted_kv_tokens_within_10_percent_of_vllm_log(name: str) -> None:
    case = CASES[name]
    model = ModelProfile(
        name="llama-3-8b", source=ModelSource(hf="meta-llama/Llama-3.1-8B-Instruct"), architecture=LLAMA3_8B
    )
    plan = make_plan(model, _node(case), case.request)
    error = plan.kv_cache_tokens / case.logged_tokens - 1
    assert abs(error) < 0.10, (
        f"{name}: predicted {plan.kv_cache_tokens}, logged {case.logged_tokens} ({case.source})"
    )
    assert plan.max_concurrency == pytest.approx(plan.kv_cache_tokens / case.request.max_model_len, abs=0.01)


# Logs that give the KV memory and the tokens, for models whose reserve we cannot rebuild: they check the
# KV bytes per token (GQA heads per GPU, MoE models' attention only) and vLLM's block rounding.
KV_ONLY = {
    # Qwen3-235B-A22B-FP8, 4 x H100, TP 4: 94 layers, 4 KV heads -> 1 per GPU, head_dim 128
    "qwen3-235b-a22b-fp8-tp4": (
        "https://github.com/vllm-project/vllm/issues/21348",
        Architecture(
            num_layers=94,
            hidden_size=4096,
            num_attention_heads=64,
            num_kv_heads=4,
            head_dim=128,
            vocab_size=151936,
            num_experts=128,
            num_experts_per_tok=8,
            moe_intermediate_size=1536,
        ),
        4,
        8.11,
        178_880,
    ),
    # Qwen3-14B, one GPU: 40 layers, 8 KV heads, head_dim 128
    "qwen3-14b-tp1": (
        "https://github.com/LMCache/LMCache/issues/1739",
        Architecture(
            num_layers=40,
            hidden_size=5120,
            num_attention_heads=40,
            num_kv_heads=8,
            head_dim=128,
            vocab_size=151936,
            intermediate_size=17408,
        ),
        1,
        6.51,
        42_656,
    ),
}


@pytest.mark.parametrize("name", sorted(KV_ONLY))
def test_kv_tokens_from_logged_kv_memory(name: str) -> None:
    source, arch, tp, kv_gib, logged = KV_ONLY[name]
    per_token = arch.num_layers * mem.kv_bytes_per_token_per_layer(arch, tp, 2)
    tokens = mem.kv_cache_tokens(kv_gib * GIB, per_token)
    assert abs(tokens / logged - 1) < 0.02, f"{name}: {tokens} vs {logged} ({source})"


# The non-torch reserve per vLLM version and parallelism, as the start-up logs report it per GPU.
RESERVE_LOGS = [
    # version, tp, logged GiB, source
    ("0.6", 1, 0.35, "https://github.com/vllm-project/vllm/issues/10517: non_torch_memory=0.35GiB, TP 1"),
    ("0.19", 1, 0.25, "vLLM v0.19 H100 start-up log, TP 1 (issue 11)"),
    ("0.19", 2, 2.1, "vLLM v0.19 H100 start-up log, TP 2 (issue 11)"),
    ("0.19", 4, 2.1, "vLLM v0.19 H100 start-up log, TP 4 (issue 11)"),
]


@pytest.mark.parametrize(("version", "tp", "logged", "source"), RESERVE_LOGS)
def test_non_torch_reserve_per_version(version: str, tp: int, logged: float, source: str) -> None:
    assert mem.non_torch_bytes(tp, 1, version) / GIB == pytest.approx(logged, abs=0.01), source
    # a patch or later minor release plans with the newest calibrated version it is not older than
    assert mem.reserve_for(version + ".3").since == version


LLAMA31_70B = LLAMA_70B.model_copy(
    update={"num_params": 70.55e9, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
)


def test_tight_fit_at_tp2_uses_the_versions_reserve() -> None:
    """Llama-3.1-70B in bf16 on 2 x H100 at TP 2 leaves about 2 GiB per GPU for the KV cache under
    vLLM 0.19's 2.1 GiB reserve; the old 0.75 GiB reserve predicted 1.35 GiB more per GPU."""
    model = ModelProfile(name="llama-70b", source=ModelSource(hf="x/y"), architecture=LLAMA31_70B)
    node = NodeProfile(
        name="h100x2",
        gpu=GpuSpec(model="NVIDIA H100 80GB HBM3", count=2, memory_gib=79.22),
        cpu=CpuSpec(cores=32, ram_gib=256),
    )
    new = make_plan(model, node, PlanRequest(tp=2, max_model_len=8192))
    old = make_plan(model, node, PlanRequest(tp=2, max_model_len=8192, vllm_version="0.6"))
    assert (new.vllm_version, new.non_torch_gib_per_gpu, old.non_torch_gib_per_gpu) == ("0.19", 2.1, 0.75)
    assert new.kv_cache_gib_per_gpu == pytest.approx(old.kv_cache_gib_per_gpu - 1.35, abs=0.02)
    assert 1.5 < new.kv_cache_gib_per_gpu < 2.5 and new.verdict == "poor"
    assert old.max_concurrency > 1.6 * new.max_concurrency
