"""make_plan: will this model fit this node, and how many max-length requests can it serve at once?

Pure apart from reading the model's local files (config.json, safetensors index, GGUF); no GPU is touched.
GPU plans follow vLLM's start-up memory profiling; CPU plans follow llama.cpp's allocations in RAM, or
vLLM's CPU build (its KV cache is the space VLLM_CPU_KVCACHE_SPACE gives, in blocks of 128 tokens).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from llmops.errors import UsageError
from llmops.plan import memory as mem
from llmops.plan.model import Plan, PlanRequest, Recommendation
from llmops.plan.sources import ModelFacts, model_facts
from llmops.profiles.schema import ModelProfile, NodeProfile
from llmops.profiles.serving import PLAN_SETTINGS, resolve_serving
from llmops.settings import Resolved, Resolver

GIB = mem.GIB
RAM_FRACTION = 0.9  # share of a CPU node's RAM a llama.cpp plan may use (the rest: OS, server, page cache)
LLAMACPP_N_CTX = 2048  # llama-cpp-python server's default n_ctx
LLAMACPP_N_UBATCH = 512
ENGINES_ON_CPU = ("llamacpp",)
# vLLM's CPU build (vllm/platforms/cpu.py): blocks of 128 tokens unless the model uses MLA (16)
VLLM_CPU_BLOCK_SIZE = 128
VLLM_CPU_MLA_BLOCK_SIZE = 16
QUANT_LADDER = ("fp8", "awq")  # tried in this order when the weights do not fit
PLANNED = tuple(spec.name for spec in PLAN_SETTINGS)


class _Inputs(dict[str, Any]):
    """The planner's inputs by its names (tp, pp, ... from the settings table, plus gpus and
    gpu_memory_gib): read as attributes, changed by copying."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def with_(self, **changes: Any) -> _Inputs:
        return _Inputs({**self, **changes})


def make_plan(model: ModelProfile, node: NodeProfile, req: PlanRequest | None = None) -> Plan:
    """The memory plan for `model` on `node`; `req` fields are what a caller asks (None: the profile's,
    else the default). The library entry point: no environment or workspace is read."""
    req = req or PlanRequest()
    flags = {spec.name: getattr(req, spec.plan_name) for spec in PLAN_SETTINGS}
    resolver = Resolver("serve")
    resolve_serving(resolver, model, flags, env=False, names=PLANNED, node=node)
    return plan_settings(model, node, resolver.resolved, gpus=req.gpus, gpu_memory_gib=req.gpu_memory_gib)


def plan_settings(
    model: ModelProfile,
    node: NodeProfile,
    resolved: Mapping[str, Any],
    *,
    gpus: int | None = None,
    gpu_memory_gib: float | None = None,
) -> Plan:
    """The plan for serving settings already resolved (by `make_plan`, `serve`'s pre-flight or
    `llmops plan`), with recommendations that would make it fit or serve better."""
    resolved = resolved if isinstance(resolved, Resolved) else Resolved(resolved)
    engine = resolved.value("engine") or model.engine
    facts = _served_facts(model_facts(model), model, engine, resolved.value("quantization"))
    on_cpu = _on_cpu(model, node, engine)
    settings, origins = _inputs(model, node, resolved, facts, on_cpu, gpus, gpu_memory_gib)
    compute = _cpu_plan if on_cpu else _gpu_plan
    plan = compute(model, node, facts, settings, origins)
    plan.recommendations = (_cpu_recommendations if on_cpu else _gpu_recommendations)(
        model, node, facts, settings, plan
    )
    return plan


def _served_facts(
    facts: ModelFacts, model: ModelProfile, engine: str, quantization: str | None
) -> ModelFacts:
    """vLLM serves a GGUF profile without `quantization: gguf` from the 16-bit checkpoint made from it
    (llmops.hf.checkpoint): its weights are the parameters at 16 bits, not the GGUF file's bytes."""
    if engine != "vllm" or not model.source.gguf or quantization in (None, "gguf"):
        return facts
    note = "vLLM loads the 16-bit checkpoint made from the GGUF (llmops.hf.checkpoint)"
    return replace(
        facts, weight_bytes=None, weight_bytes_source=None, quantization=None, notes=[*facts.notes, note]
    )


def _on_cpu(model: ModelProfile, node: NodeProfile, engine: str) -> bool:
    if engine in ENGINES_ON_CPU:
        return True
    if engine == "vllm" and node.gpu is None:  # vLLM's CPU build
        return True
    if node.gpu is None:
        raise UsageError(
            f"{model.name} uses engine {engine}, which needs GPUs; node {node.name} has none",
            hint="pick a GPU node with --node (`llmops profiles list --kind node`), "
            "or plan a GGUF model, which llama.cpp serves from RAM",
        )
    return False


def _inputs(
    model: ModelProfile,
    node: NodeProfile,
    resolved: Resolved,
    facts: ModelFacts,
    on_cpu: bool,
    gpus: int | None,
    gpu_memory_gib: float | None,
) -> tuple[_Inputs, dict[str, str]]:
    """The resolved settings by the planner's names, with the defaults that depend on the hardware."""
    values = _Inputs()
    origins: dict[str, str] = {}
    for spec in PLAN_SETTINGS:
        setting = resolved.get(spec.name)
        values[spec.plan_name] = None if setting is None else setting.value
        origins[spec.plan_name] = "default" if setting is None else setting.origin

    def default(name: str, value: Any) -> None:
        if values.get(name) is None:
            values[name], origins[name] = value, "default"

    arch = facts.architecture
    if values.engine is None:
        values["engine"] = model.engine
    if on_cpu and values.engine == "vllm":  # vLLM's CPU build: RAM instead of GPU memory
        values.update(gpus=0, gpu_memory_gib=node.cpu.ram_gib)
        origins.update(gpus="default", gpu_memory_gib="profile")
        default("max_model_len", arch.max_position_embeddings or 4096)
        default("max_num_batched_tokens", 4096)
        default("max_num_seqs", 256)
        default("vllm_version", mem.NEWEST_VLLM)
    elif on_cpu:
        values.update(gpus=0, gpu_memory_gib=node.cpu.ram_gib, tp=1, pp=1)
        values["gpu_memory_utilization"] = RAM_FRACTION
        origins.update(gpus="default", gpu_memory_gib="profile", gpu_memory_utilization="default")
        default("max_model_len", LLAMACPP_N_CTX)
        default("max_num_batched_tokens", LLAMACPP_N_UBATCH)
        default("max_num_seqs", 1)
    else:
        assert node.gpu is not None
        values["gpus"] = gpus or node.gpu.count
        values["gpu_memory_gib"] = gpu_memory_gib or node.gpu.memory_gib
        origins["gpus"] = "flag" if gpus else "profile"
        origins["gpu_memory_gib"] = "flag" if gpu_memory_gib else "profile"
        default("max_model_len", arch.max_position_embeddings or 4096)
        tokens, seqs = mem.default_batched_tokens(values.gpu_memory_gib, node.gpu.model)
        default("max_num_batched_tokens", tokens)
        default("max_num_seqs", seqs)
        default("vllm_version", mem.NEWEST_VLLM)
    if facts.quantization and values.quantization != facts.quantization:
        values["quantization"], origins["quantization"] = facts.quantization, "checkpoint"
    _check_parallel(model, node, values, arch.num_attention_heads, arch.num_layers)
    return values, origins


def _check_parallel(model: ModelProfile, node: NodeProfile, s: _Inputs, heads: int, layers: int) -> None:
    if s.gpus and s.tp * s.pp > s.gpus:
        raise UsageError(
            f"tp {s.tp} x pp {s.pp} needs {s.tp * s.pp} GPUs; node {node.name} has {s.gpus}",
            hint=f"lower --tp/--pp, or ask 'what if' with --gpus {s.tp * s.pp}",
        )
    if heads % s.tp:
        raise UsageError(
            f"{model.name} has {heads} attention heads, not divisible by tp {s.tp}",
            hint=f"use a tp that divides {heads}",
        )
    if s.pp > layers:
        raise UsageError(f"pp {s.pp} is more than {model.name}'s {layers} layers", hint="lower --pp")


# --- weights ---------------------------------------------------------------------------------------


def _dtype_bytes(facts: ModelFacts, dtype: str) -> int:
    """vLLM's dtype 'auto' takes the checkpoint's torch_dtype, but runs float32 checkpoints in 16 bits."""
    if dtype == "auto":
        stored = facts.architecture.torch_dtype or "bfloat16"
        return 2 if stored == "float32" else mem.DTYPE_BYTES[stored]
    return mem.DTYPE_BYTES[dtype]


def _weights(
    facts: ModelFacts, dtype_bytes: int, quantization: str
) -> tuple[float, float, float, float, str]:
    """(embedding, lm_head, body) bytes of the whole model, its parameter count, and the figure's source."""
    arch = facts.architecture
    stored_bytes = mem.DTYPE_BYTES.get(arch.torch_dtype or "bfloat16", 2)
    total_params = arch.num_params
    source = "parameter count in the profile" if arch.num_params else "architecture shapes"
    exact = facts.weight_bytes
    if exact and facts.quantization:  # a quantized checkpoint loads as stored
        counts = mem.param_counts(arch, total_params)
        emb, head = counts.embedding * 2, counts.lm_head * 2
        body = max(exact - emb - head, 0.0)
        params = total_params or counts.total
        return emb, head, body, params, facts.weight_bytes_source or "checkpoint"
    if exact:
        total_params = exact / stored_bytes
        source = facts.weight_bytes_source or "checkpoint"
    counts = mem.param_counts(arch, total_params)
    emb, head, body = mem.weight_bytes(counts, dtype_bytes, quantization)
    return emb, head, body, counts.total, source


def _gpu_weights_per_gpu(emb: float, head: float, body: float, layers: int, s: _Inputs) -> float:
    """The busiest GPU's share: tensor parallel shards every matrix (vocab too); pipeline stages split layers,
    with the embedding on the first stage and lm_head on the last."""
    stage = mem.layers_per_stage(layers, s.pp)
    ends = emb + head if s.pp == 1 else max(emb, head)
    return (body * stage / layers + ends) / s.tp


# --- GPU plan ---------------------------------------------------------------------------------------


def _gpu_plan(
    model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, origins: dict[str, str]
) -> Plan:
    arch = facts.architecture
    dtype_bytes = _dtype_bytes(facts, s.dtype)
    emb, head, body, params, source = _weights(facts, dtype_bytes, s.quantization)
    weights = _gpu_weights_per_gpu(emb, head, body, arch.num_layers, s)
    budget = s.gpu_memory_utilization * s.gpu_memory_gib * GIB
    activation = mem.activation_peak_bytes(
        arch, tp=s.tp, num_tokens=s.max_num_batched_tokens, num_seqs=s.max_num_seqs, act_bytes=dtype_bytes
    )
    non_torch = mem.non_torch_bytes(s.tp, s.pp, s.vllm_version)
    kv_available = budget - weights - activation - non_torch
    kv_elem = 1 if s.kv_cache_dtype.startswith("fp8") else dtype_bytes
    stage_layers = mem.layers_per_stage(arch.num_layers, s.pp)
    kv_per_token = stage_layers * mem.kv_bytes_per_token_per_layer(arch, s.tp, kv_elem)
    tokens = mem.kv_cache_tokens(kv_available, kv_per_token)
    notes = list(facts.notes)
    headroom = (1 - s.gpu_memory_utilization) * s.gpu_memory_gib
    if headroom < 1.0:
        notes.append(
            f"only {headroom:.2f} GiB per GPU is left outside gpu_memory_utilization for CUDA graphs "
            "and other processes; vLLM may run out of memory while capturing graphs"
        )
    if s.max_model_len > (arch.max_position_embeddings or s.max_model_len):
        notes.append(
            f"max_model_len {s.max_model_len} is longer than the model's "
            f"{arch.max_position_embeddings} positions; vLLM refuses it without rope scaling"
        )
    if s.engine != "vllm":
        notes.append(f"engine {s.engine} is planned with vLLM's memory model")
    reserve = mem.reserve_for(s.vllm_version)
    if mem.version_tuple(s.vllm_version) < mem.version_tuple(reserve.since):
        notes.append(
            f"vLLM {s.vllm_version} is older than the calibrated versions; planned with {reserve.since}'s reserve"
        )
    return _finish(
        model,
        node,
        "gpu",
        s,
        origins,
        notes,
        params=params,
        source=source,
        weights_total=emb + head + body,
        weights=weights,
        budget=budget,
        activation=activation,
        non_torch=non_torch,
        headroom=headroom,
        kv_available=kv_available,
        kv_per_token=kv_per_token,
        tokens=tokens,
    )


def _finish(
    model: ModelProfile,
    node: NodeProfile,
    device: str,
    s: _Inputs,
    origins: dict[str, str],
    notes: list[str],
    *,
    params: float,
    source: str,
    weights_total: float,
    weights: float,
    budget: float,
    activation: float,
    non_torch: float,
    headroom: float,
    kv_available: float,
    kv_per_token: float,
    tokens: int,
) -> Plan:
    concurrency = tokens / s.max_model_len
    fits = tokens >= s.max_model_len
    needed = weights + activation + non_torch + s.max_model_len * kv_per_token
    verdict = "does-not-fit" if not fits else ("poor" if concurrency < s.min_concurrency else "fits")
    return Plan(
        **{spec.plan_name: s[spec.plan_name] for spec in PLAN_SETTINGS},
        model=model.name,
        node=node.name,
        device=device,  # type: ignore[arg-type]
        gpus=s.gpus,
        gpu_memory_gib=round(s.gpu_memory_gib, 2),
        origins=origins,
        num_params=params,
        weights_source=source,
        weights_gib_total=_gib(weights_total),
        weights_gib_per_gpu=_gib(weights),
        memory_budget_gib_per_gpu=_gib(budget),
        activation_gib_per_gpu=_gib(activation),
        non_torch_gib_per_gpu=_gib(non_torch),
        headroom_gib_per_gpu=round(headroom, 2),
        kv_cache_gib_per_gpu=_gib(max(kv_available, 0.0)),
        kv_bytes_per_token_per_gpu=kv_per_token,
        kv_cache_tokens=tokens,
        max_concurrency=round(concurrency, 2),
        replicas=max(1, s.gpus // (s.tp * s.pp)) if device == "gpu" else 1,
        fits=fits,
        verdict=verdict,
        shortfall_gib=0.0 if fits else _gib(max(needed - budget, 0.0)),
        notes=notes,
    )


def _gib(value: float) -> float:
    return round(value / GIB, 2)


# --- CPU plan (llama.cpp) ---------------------------------------------------------------------------


def _cpu_plan(
    model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, origins: dict[str, str]
) -> Plan:
    if s.engine == "vllm":
        return _vllm_cpu_plan(model, node, facts, s, origins)
    return _llamacpp_plan(model, node, facts, s, origins)


def vllm_cpu_kv_tokens(
    kv_bytes: float, kv_bytes_per_token: float, max_model_len: int, block_size: int
) -> int:
    """The figure vLLM logs as `CPU KV cache size: N tokens`: whole blocks of the KV space, counted as
    max-length requests (a request holds ceil(max_model_len / block_size) blocks) times max_model_len
    (vllm/v1/core/kv_cache_utils.py, get_kv_cache_capacity)."""
    if kv_bytes <= 0 or kv_bytes_per_token <= 0:
        return 0
    blocks = int(kv_bytes // (kv_bytes_per_token * block_size))
    per_request = math.ceil(max_model_len / block_size)
    return int(blocks / per_request * max_model_len)


def _vllm_cpu_plan(
    model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, origins: dict[str, str]
) -> Plan:
    """vLLM's CPU build in RAM: weights at the dtype, and a KV cache of exactly VLLM_CPU_KVCACHE_SPACE GiB
    per worker (each pipeline stage holds its own layers' KV); unset, vLLM takes gpu_memory_utilization of
    the node's RAM less what the worker holds, planned as that less the weights."""
    arch = facts.architecture
    notes = list(facts.notes)
    dtype_bytes = _dtype_bytes(facts, s.dtype)
    emb, head, body, params, source = _weights(facts, dtype_bytes, s.quantization)
    weights = emb + head + body
    budget = s.gpu_memory_utilization * s.gpu_memory_gib * GIB
    stage_layers = mem.layers_per_stage(arch.num_layers, s.pp)
    kv_elem = 1 if s.kv_cache_dtype.startswith("fp8") else dtype_bytes
    kv_per_token = stage_layers * mem.kv_bytes_per_token_per_layer(arch, s.tp, kv_elem)
    space = s.cpu_kvcache_space_gib
    if space:
        kv_available = space * GIB
        if weights + kv_available * s.pp > budget:
            notes.append(
                f"KV space {space} GiB x {s.pp} worker(s) plus {weights / GIB:.2f} GiB of weights is more than "
                f"{s.gpu_memory_utilization:g} of the node's {s.gpu_memory_gib:g} GiB RAM"
            )
    else:
        kv_available = budget - weights
        notes.append(
            "no cpu_kvcache_space_gib: vLLM sizes the KV cache from free RAM at start-up; planned as "
            "gpu_memory_utilization of RAM less the weights (set it for a figure vLLM will match)"
        )
    block = VLLM_CPU_MLA_BLOCK_SIZE if arch.is_mla else VLLM_CPU_BLOCK_SIZE
    tokens = vllm_cpu_kv_tokens(kv_available, kv_per_token, s.max_model_len, block)
    return _finish(
        model,
        node,
        "cpu",
        s,
        origins,
        notes,
        params=params,
        source=source,
        weights_total=weights,
        weights=weights,
        budget=budget,
        activation=0.0,
        non_torch=0.0,
        headroom=(1 - s.gpu_memory_utilization) * s.gpu_memory_gib,
        kv_available=kv_available,
        kv_per_token=kv_per_token,
        tokens=tokens,
    )


def _llamacpp_plan(
    model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, origins: dict[str, str]
) -> Plan:
    """llama.cpp in RAM: the GGUF is memory-mapped whole, the KV cache is f16 (q8_0 for 'fp8') for n_ctx
    tokens, and the compute buffer holds one micro-batch of logits and activations in fp32."""
    arch = facts.architecture
    notes = list(facts.notes)
    counts = mem.param_counts(arch)
    params = arch.num_params or counts.total
    if facts.weight_bytes:
        weights, source = float(facts.weight_bytes), facts.weight_bytes_source or "GGUF file"
    else:
        gtype = facts.gguf_type or "Q4_K_M"
        weights, source = params * mem.GGUF_BITS.get(gtype, 4.85) / 8, f"parameter count at {gtype}"
    if node.gpu is not None:
        notes.append(
            f"llama.cpp is planned in node RAM (CPU build); the node's {node.gpu_count} GPUs are unused"
        )
    budget = s.gpu_memory_utilization * s.gpu_memory_gib * GIB
    compute = mem.llamacpp_compute_bytes(arch, n_ctx=s.max_model_len, n_ubatch=s.max_num_batched_tokens)
    kv_elem = 34 / 32 if s.kv_cache_dtype.startswith("fp8") else 2  # q8_0 or f16 cache
    kv_per_token = arch.num_layers * mem.kv_bytes_per_token_per_layer(arch, 1, kv_elem)
    kv_available = budget - weights - compute
    tokens = mem.kv_cache_tokens(kv_available, kv_per_token, block_size=1)
    return _finish(
        model,
        node,
        "cpu",
        s,
        origins,
        notes,
        params=params,
        source=source,
        weights_total=weights,
        weights=weights,
        budget=budget,
        activation=compute,
        non_torch=0.0,
        headroom=(1 - s.gpu_memory_utilization) * s.gpu_memory_gib,
        kv_available=kv_available,
        kv_per_token=kv_per_token,
        tokens=tokens,
    )


# --- recommendations --------------------------------------------------------------------------------


def _evaluate(model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, on_cpu: bool) -> Plan:
    return (_cpu_plan if on_cpu else _gpu_plan)(model, node, facts, s, {})


def _rec(description: str, changes: dict[str, Any], plan: Plan) -> Recommendation:
    return Recommendation(description=description, changes=changes, result=plan.capacity())


def _parallel_options(heads: int, layers: int, gpus: int) -> list[tuple[int, int]]:
    """(tp, pp) pairs on `gpus` GPUs, fewest GPUs first, then more tensor than pipeline parallelism."""
    tps = [t for t in (1, 2, 4, 8, 16) if t <= gpus and heads % t == 0]
    pairs = [(t, p) for t in tps for p in range(1, gpus // t + 1) if p <= layers]
    return sorted(pairs, key=lambda tp_pp: (tp_pp[0] * tp_pp[1], -tp_pp[0]))


def _gpu_recommendations(
    model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, base: Plan
) -> list[Recommendation]:
    arch = facts.architecture
    recs: list[Recommendation] = []
    good = ("fits",) if base.verdict != "fits" else ("fits", "poor")

    def try_(settings: _Inputs) -> Plan:
        return _evaluate(model, node, facts, settings, on_cpu=False)

    parallel = _parallel_options(arch.num_attention_heads, arch.num_layers, s.gpus)
    quants = [s.quantization] if facts.quantization or s.quantization != "none" else ["none", *QUANT_LADDER]
    # 1. the smallest tp x pp (at the current quantization, else with the mildest quantization) that fits
    if base.verdict != "fits":
        found = _first_fit(try_, s, parallel, quants, want=("fits",)) or _first_fit(
            try_, s, parallel, quants, want=("poor",)
        )
        if found:
            settings, plan = found
            changes = {
                k: v
                for k, v in (
                    ("tensor_parallel_size", settings.tp),
                    ("pipeline_parallel_size", settings.pp),
                    ("quantization", settings.quantization),
                )
                if v
                != {
                    "tensor_parallel_size": s.tp,
                    "pipeline_parallel_size": s.pp,
                    "quantization": s.quantization,
                }[k]
            }
            if changes:
                recs.append(_rec(_describe_parallel(settings, s), changes, plan))
    # 2. a weight quantization at the current parallelism
    if s.quantization == "none" and not facts.quantization:
        for q in QUANT_LADDER:
            plan = try_(s.with_(quantization=q))
            if plan.verdict in good or (
                q == QUANT_LADDER[-1] and plan.kv_cache_tokens > base.kv_cache_tokens
            ):
                recs.append(_rec(f"quantize the weights ({_QUANT_WORDS[q]})", {"quantization": q}, plan))
                break
    # 3. an fp8 KV cache
    if not s.kv_cache_dtype.startswith("fp8"):
        plan = try_(s.with_(kv_cache_dtype="fp8"))
        if plan.kv_cache_tokens > base.kv_cache_tokens:
            recs.append(
                _rec("store the KV cache in fp8 (half the bytes per token)", {"kv_cache_dtype": "fp8"}, plan)
            )
    # 4. a shorter max_model_len
    recs += _shorter_len(base, s, try_)
    # 5. a higher gpu_memory_utilization
    if base.verdict != "fits" and s.gpu_memory_utilization < 0.95:
        plan = try_(s.with_(gpu_memory_utilization=0.95))
        if plan.kv_cache_tokens > base.kv_cache_tokens:
            recs.append(_rec("let vLLM use 95% of each GPU", {"gpu_memory_utilization": 0.95}, plan))
    return recs


_QUANT_WORDS = {"fp8": "fp8, 1 byte per weight", "awq": "AWQ/GPTQ 4-bit, group size 128"}


def _first_fit(
    try_: Any, s: _Inputs, parallel: list[tuple[int, int]], quants: list[str], want: tuple[str, ...]
) -> tuple[_Inputs, Plan] | None:
    for q in quants:
        for tp, pp in parallel:
            settings = s.with_(tp=tp, pp=pp, quantization=q)
            plan = try_(settings)
            if plan.verdict in want:
                return settings, plan
    return None


def _describe_parallel(new: _Inputs, old: _Inputs) -> str:
    parts = []
    if (new.tp, new.pp) != (old.tp, old.pp):
        layout = f"tensor parallel {new.tp}" + (f" x pipeline parallel {new.pp}" if new.pp > 1 else "")
        parts.append(f"spread the model over {new.tp * new.pp} GPUs ({layout})")
    if new.quantization != old.quantization:
        parts.append(f"quantize the weights ({_QUANT_WORDS.get(new.quantization, new.quantization)})")
    return " and ".join(parts)


def _shorter_len(base: Plan, s: _Inputs, try_: Any) -> list[Recommendation]:
    """The longest max_model_len (a multiple of 256) reaching the concurrency threshold, when weights fit."""
    if base.verdict == "fits" or base.kv_cache_tokens < 256:
        return []
    target = s.min_concurrency
    length = int(base.kv_cache_tokens / target) // 256 * 256
    if length < 256 or length >= s.max_model_len:
        return []
    plan = try_(s.with_(max_model_len=length))
    words = f"so {target:g} requests of that length fit at once"
    return [_rec(f"shorten max_model_len to {length:,} tokens ({words})", {"max_model_len": length}, plan)]


def _cpu_recommendations(
    model: ModelProfile, node: NodeProfile, facts: ModelFacts, s: _Inputs, base: Plan
) -> list[Recommendation]:
    recs: list[Recommendation] = []

    def try_(settings: _Inputs) -> Plan:
        return _evaluate(model, node, facts, settings, on_cpu=True)

    recs += _shorter_len(base, s, try_)
    return recs
