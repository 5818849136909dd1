"""The serving settings, declared once: every name, type, choice, default and help text lives here.

This one table drives the profile's `serving:` schema, the workspace's `serve:` section, the
`LLMOPS_SERVE_*` environment variables, the `serve` and `plan` flags, the planner's request and plan,
and the check that the chosen engine uses every setting that was set. It imports nothing heavy (no
pydantic, no typer), so `llmops --help` can build flags from it.

Settings are resolved by `llmops.settings.Resolver`: flag > environment (`LLMOPS_SERVE_<NAME>`) >
workspace (`serve:` in llmops.yaml) > model profile (`serving:`, `engine:`) > node profile (`serving:`,
the machine's engine settings; used only by the engines that take them) > the default here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ENGINE_NAMES = ("vllm", "llamacpp", "sglang", "trtllm")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = (
    "none",
    "fp8",
    "int8",
    "w8a8",
    "w4a16",
    "gptq",
    "awq",
    "bnb-4bit",
    "bnb-8bit",
    "gguf",
    "compressed-tensors",
)
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")

# Where a setting is used: "run" settings belong to one serve run (workspace and flags only), "engine"
# settings go to the engine (profile too; the engine must support them), "plan" settings only steer the
# memory planner (profile too; any engine).
Scope = Literal["run", "engine", "plan"]


@dataclass(frozen=True)
class ServingSetting:
    """One setting. `type` is the value's type (a string for types the profile schema defines)."""

    name: str  # the profile/workspace key, and LLMOPS_SERVE_<NAME>
    type: Any
    default: Any
    help: str
    scope: Scope = "engine"
    optional: bool = False  # None is a valid value (the engine's own default)
    choices: tuple[str, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    flag: str | None = None  # e.g. "--tp"; None: no command-line flag
    short: str | None = None  # e.g. "-q" (decided in llmops/options.py)
    commands: tuple[str, ...] = ("serve",)  # the commands that offer the flag
    plan_name: str | None = None  # the planner's name for it (PlanRequest, Plan); None: not planned

    @property
    def in_profile(self) -> bool:
        return self.scope != "run"

    def describe_choices(self) -> str:
        return ", ".join(self.choices or ())


def _s(name: str, type_: Any, default: Any, help_: str, **kw: Any) -> ServingSetting:
    return ServingSetting(name, type_, default, help_, **kw)


SETTINGS: tuple[ServingSetting, ...] = (
    # --- one serve run (workspace `serve:` and flags) ---
    _s("engine", str, None, "Engine (default: the profile's).", scope="run", choices=ENGINE_NAMES,
       flag="--engine", short="-e", commands=("serve", "plan"), plan_name="engine"),
    _s("host", str, "127.0.0.1", "Address to listen on.", scope="run", flag="--host"),
    _s("port", int, 8000, "Port to listen on.", scope="run", ge=1, le=65535, flag="--port"),
    _s("ready_timeout_s", float, 120.0, "Seconds to wait for the engine to be ready.", scope="run", gt=0,
       flag="--ready-timeout"),
    # --- engine settings (profile `serving:` too); names follow vLLM's flags ---
    _s("tensor_parallel_size", int, 1, "Tensor-parallel size (GPUs per model replica).", ge=1,
       flag="--tp", commands=("serve", "plan"), plan_name="tp"),
    _s("pipeline_parallel_size", int, 1, "Pipeline-parallel size.", ge=1, flag="--pp",
       commands=("serve", "plan"), plan_name="pp"),
    _s("gpu_memory_utilization", float, 0.9, "Fraction of each GPU's memory the engine may use.", gt=0,
       le=1, flag="--gpu-memory-utilization", commands=("serve", "plan"),
       plan_name="gpu_memory_utilization"),
    _s("max_model_len", int, None, "Longest sequence (prompt + output) in tokens.", optional=True, ge=1,
       flag="--max-model-len", commands=("serve", "plan"), plan_name="max_model_len"),
    _s("dtype", str, "auto", "Weight and activation dtype.", choices=DTYPES, flag="--dtype",
       commands=("serve", "plan"), plan_name="dtype"),
    _s("quantization", str, "none", "Weight quantization.", choices=QUANTIZATIONS, flag="--quantization",
       short="-q", commands=("serve", "plan"), plan_name="quantization"),
    _s("kv_cache_dtype", str, "auto", "KV cache dtype.", choices=KV_CACHE_DTYPES, flag="--kv-cache-dtype",
       commands=("serve", "plan"), plan_name="kv_cache_dtype"),
    _s("enable_prefix_caching", bool, None, "Automatic prefix caching.", optional=True,
       flag="--enable-prefix-caching"),
    _s("enable_chunked_prefill", bool, None, "Chunked prefill (long prompts split across steps).",
       optional=True, flag="--enable-chunked-prefill"),
    _s("max_num_seqs", int, None, "Most sequences per batch.", optional=True, ge=1, flag="--max-num-seqs",
       commands=("serve", "plan"), plan_name="max_num_seqs"),
    _s("max_num_batched_tokens", int, None, "Most tokens per scheduler step.", optional=True, ge=1,
       flag="--max-num-batched-tokens", commands=("serve", "plan"), plan_name="max_num_batched_tokens"),
    _s("lora_modules", "list[LoraModule]", (), "LoRA adapters to serve (name, path)."),
    _s("max_lora_rank", int, None, "Largest LoRA rank.", optional=True, ge=1),
    _s("speculative_config", dict[str, Any], None, "vLLM's speculative decoding config.", optional=True),
    _s("served_model_name", str, None, "Name clients send (default: the profile's name).", optional=True,
       flag="--served-model-name"),
    _s("chat_template", str, None, "Chat template name or file.", optional=True),
    _s("n_threads", int, None, "llama.cpp CPU threads (default: the node's cores).", optional=True, ge=1),
    _s("extra_buffer_types", str, "auto", "llama.cpp's extra CPU buffer types (AMX, repacked weights): "
       "auto = on unless the CPU self-check crashes with them.", choices=("auto", "on", "off"),
       flag="--extra-buffer-types"),
    # --- where the engine lives, and vLLM's CPU build (a node profile's `serving:` is the usual place) ---
    _s("engine_env", str, None, "Where the engine runs: 'current' (llmops's own Python) or a Python "
       "environment directory (its bin/python starts the engine). Default: found (vLLM: .venv-vllm).",
       optional=True, flag="--engine-env"),
    _s("engine_image", str, None, "Container image the engine runs in under --k8s (default: the "
       "engine's official image).", optional=True),
    _s("cpu_kvcache_space_gib", int, None, "vLLM CPU build: KV-cache space in whole GiB "
       "(VLLM_CPU_KVCACHE_SPACE).", optional=True, ge=1, commands=("serve", "plan"),
       plan_name="cpu_kvcache_space_gib"),
    _s("cpu_omp_threads_bind", str, None, "vLLM CPU build: cores each worker's OpenMP threads bind to "
       "(VLLM_CPU_OMP_THREADS_BIND: 'auto', 'nobind', '0-3', '0|1').", optional=True),
    _s("enforce_eager", bool, None, "vLLM: no torch.compile or graphs (starts in seconds, runs slower).",
       optional=True, flag="--enforce-eager"),
    # --- one engine across several workers and hosts (vLLM: its own multi-node launcher, or Ray) ---
    _s("distributed_executor_backend", str, None, "vLLM's executor for TP x PP: 'mp' (processes; across "
       "hosts with --nnodes) or 'ray' (GPU clusters only). Default: mp, Ray when TP x PP spans GPU nodes "
       "and --nnodes is not given.", optional=True, choices=("mp", "ray"),
       flag="--distributed-executor-backend"),
    _s("nnodes", int, None, "Hosts one engine spans with vLLM's multi-node launcher (each runs `llmops "
       "serve` with its --node-rank).", optional=True, ge=1, flag="--nnodes"),
    _s("node_rank", int, 0, "This host's rank among --nnodes: 0 is the head (serves the API), others are "
       "headless followers.", ge=0, flag="--node-rank"),
    _s("master_addr", str, None, "The head host's address the followers reach (multi-node).",
       optional=True, flag="--master-addr"),
    _s("master_port", int, 29501, "The head's port for the followers (multi-node).", ge=1, le=65535,
       flag="--master-port"),
    _s("extra_args", list[str], (), "Passed to the engine as they are."),
    # --- the planner only ---
    _s("min_concurrency", float, 2.0, "Plan calls a fit 'poor' below this many concurrent max-length "
       "requests.", scope="plan", gt=0, flag="--min-concurrency", commands=("plan",),
       plan_name="min_concurrency"),
    _s("vllm_version", str, None, "vLLM version whose memory use to plan with (default: the newest known).",
       scope="plan", optional=True, flag="--vllm-version", commands=("serve", "plan"),
       plan_name="vllm_version"),
)  # fmt: skip

BY_NAME: dict[str, ServingSetting] = {s.name: s for s in SETTINGS}
PROFILE_SETTINGS = tuple(s for s in SETTINGS if s.in_profile)
# A node profile's `serving:`: the machine's engine settings (an engine that does not take one ignores it).
NODE_SETTINGS = tuple(s for s in PROFILE_SETTINGS if s.scope == "engine")
PLAN_SETTINGS = tuple(s for s in SETTINGS if s.plan_name)


def flags_for(command: str) -> tuple[ServingSetting, ...]:
    """The settings a command offers as flags, in table order."""
    return tuple(s for s in SETTINGS if s.flag and command in s.commands)


def parse_env(spec: ServingSetting, raw: str) -> Any:
    """An environment string as the setting's type (validated again by the schema where it is used)."""
    if spec.type is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if spec.type in (int, float):
        return spec.type(raw)
    if spec.type is str:
        if spec.choices and raw not in spec.choices:
            raise ValueError(f"expected one of {spec.describe_choices()}")
        return raw
    import json

    return json.loads(raw)


def is_set(spec: ServingSetting, value: Any, origin: str) -> bool:
    """Whether a resolved value changes anything: given by someone, and not the default's value."""
    if origin == "default" or value is None:
        return False
    return not (value == spec.default or (spec.default == () and value in ([], ())))


def profile_value(serving: Any, name: str) -> Any:
    """The profile's value for a setting, or None when the profile does not set it."""
    if serving is None or name not in getattr(serving, "model_fields_set", ()):
        return None
    return getattr(serving, name)


def resolve_serving(
    resolver: Any,
    model: Any,
    flags: Mapping[str, Any] | None = None,
    *,
    env: bool = True,
    names: tuple[str, ...] | None = None,
    node: Any = None,
) -> Any:
    """Every serving setting by flag > env > workspace > model profile > node profile > default, recorded
    in `resolver`.

    `flags` maps setting names to what the user gave (None = not given). `resolver.workspace` is the
    workspace's `serve:` section (or None). The engine's profile value is the model's `engine:`.
    """
    from llmops.settings import env_var

    given = {k: v for k, v in (flags or {}).items() if v is not None}
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        from llmops.errors import UsageError

        raise UsageError(
            f"unknown serve setting(s): {', '.join(unknown)}", hint=f"known: {', '.join(BY_NAME)}"
        )
    serving = getattr(model, "serving", None)
    node_serving = getattr(node, "serving", None)
    for spec in SETTINGS:
        if names is not None and spec.name not in names:
            continue
        if spec.name == "engine":
            explicit = "engine" in getattr(model, "model_fields_set", ())
            profile, default = (model.engine if explicit else None), model.engine
        else:
            profile, default = profile_value(serving, spec.name), spec.default
        if isinstance(default, tuple):
            default = list(default)
        resolver.take(
            spec.name,
            given.get(spec.name),
            profile=profile,
            node=None if spec.name == "engine" else profile_value(node_serving, spec.name),
            default=default,
            env=env_var("serve", spec.name) if env else False,
            cast=lambda raw, spec=spec: parse_env(spec, raw),
        )
    return resolver.resolved
