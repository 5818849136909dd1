"""vLLM's OpenAI-compatible server (`vllm serve`): the GPU engine, with Ray beyond one node's GPUs."""

from __future__ import annotations

import json

from llmops.profiles.checkpoint import resolve_gguf_path
from llmops.serve.engines.base import (
    COMMON_FAILURES,
    GPU_SERVER_SETTINGS,
    FailurePattern,
    Launch,
    gpu_server_launch,
)
from llmops.serve.settings import ServeSettings

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
    """TP x PP beyond one node's GPUs means vLLM's Ray backend across nodes."""
    return s.tp * s.pp > max(s.node.gpu_count, 1)


def model_arg(s: ServeSettings) -> list[str]:
    """The positional model plus what locates it (revision, tokenizer)."""
    src = s.model.source
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
            r"gated repo|Access to model .* is restricted|401 Client Error",
            "the model is gated: export HF_TOKEN with a token that has access (it is passed by name)",
        ),
        *COMMON_FAILURES,
    )

    def launch(self, s: ServeSettings) -> Launch:
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
        for key in ("max_num_seqs", "max_num_batched_tokens"):
            if s.get(key):
                argv += [f"--{key.replace('_', '-')}", str(s[key])]
        if loras := s.get("lora_modules"):
            argv += ["--enable-lora", "--lora-modules", *(f"{m.name}={m.path}" for m in loras)]
            if s.get("max_lora_rank"):
                argv += ["--max-lora-rank", str(s["max_lora_rank"])]
        if spec := s.get("speculative_config"):
            argv += ["--speculative-config", json.dumps(spec, separators=(",", ":"), sort_keys=True)]
        if template := s.get("chat_template"):
            argv += ["--chat-template", template]
        return gpu_server_launch(self.name, s, argv)


ENGINE = Vllm()
