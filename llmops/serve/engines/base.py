"""What an engine is to llmops: a way to turn resolved settings into a launch, and to read its log."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.errors import UsageError
from llmops.profiles.serving import BY_NAME, is_set
from llmops.serve.settings import ServeSettings, where

SECRET_ENV = ("HF_TOKEN",)
# The engine settings every Hugging Face GPU server here takes (vLLM and SGLang; llmops/profiles/serving.py)
GPU_SERVER_SETTINGS = frozenset(
    {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "dtype",
        "enable_prefix_caching",
        "max_num_seqs",
        "served_model_name",
        "chat_template",
        "extra_args",
    }
)  # passed through from the caller's environment by name, never by value


@dataclass(frozen=True)
class Launch:
    """The process to start and how to tell that it is ready."""

    engine: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # literal, non-secret values
    env_from_host: list[str] = field(default_factory=list)  # names inherited from the caller (secrets)
    host: str = "127.0.0.1"
    port: int = 8000
    served_name: str = ""
    health_path: str | None = "/health"  # None when the engine has no health route
    needs_gpu: bool = False
    # How argv[0] runs on this machine when not from PATH (an engine environment's Python and a launcher);
    # argv stays the engine's own command line, as a container runs it.
    runner: list[str] = field(default_factory=list)
    headless: bool = False  # a multi-node follower: no API here; it runs until the head stops

    @property
    def exec_argv(self) -> list[str]:
        """What llmops starts here: argv, with argv[0] replaced by the runner when there is one."""
        return [*self.runner, *self.argv[1:]] if self.runner else list(self.argv)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def command_line(self) -> str:
        import shlex

        return shlex.join(self.argv)

    def exec_command_line(self) -> str:
        import shlex

        return shlex.join(self.exec_argv)

    def to_json(self) -> dict:
        """The launch's facts for --dry-run --json (the engine and names are in its settings)."""
        return {
            "argv": self.argv,
            "exec_argv": self.exec_argv,
            "env": self.env,
            "env_from_host": {name: f"${{{name}}}" for name in self.env_from_host},
            "base_url": self.base_url,
            "client_model": self.served_name,
            "health_path": self.health_path,
        }


@dataclass(frozen=True)
class FailurePattern:
    """A regex over an engine's log that names a common start-up failure and its fix."""

    regex: str
    diagnosis: str

    def search(self, text: str) -> bool:
        return re.search(self.regex, text, re.IGNORECASE | re.MULTILINE) is not None


# Failures every engine shares; engines add their own in front.
PORT_IN_USE = FailurePattern(
    r"address already in use|Errno 98|Errno 48|only one usage of each socket address",
    "the port is already in use: pick another with --port, or stop what listens there",
)

COMMON_FAILURES: tuple[FailurePattern, ...] = (
    FailurePattern(
        r"CUDA out of memory|OutOfMemoryError|cudaErrorMemoryAllocation|"
        r"No available memory for the cache blocks|insufficient memory",
        "CUDA out of memory: lower --max-model-len or --max-num-seqs, raise --tp, or quantize "
        "(`llmops plan` shows what fits)",
    ),
    PORT_IN_USE,
    FailurePattern(
        r"No such file or directory|does not exist|FileNotFoundError|Failed to load model from file|"
        r"Repository Not Found|is not a local folder and is not a valid model identifier",
        "the model file or checkpoint is missing: check the profile's source (`llmops profiles show`)",
    ),
    FailurePattern(
        r"Unknown quantization|quantization method .* not supported|not supported for quantization|"
        r"Unsupported quantization|invalid choice: .*quantization|"
        r"is not supported for the current GPU|Minimum capability",
        "the quantization is not supported by this engine or GPU: choose another --quantization "
        "or a checkpoint in a supported format",
    ),
    FailurePattern(
        r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver initialization failed",
        "no usable GPU: this engine needs NVIDIA GPUs; on a CPU use --engine llamacpp with a GGUF model",
    ),
    FailurePattern(
        r"ModuleNotFoundError: No module named",
        "a Python module the engine needs is missing: reinstall the engine's extra",
    ),
)


class Engine(Protocol):
    """One module per engine fills this interface; the registry in `engines/__init__.py` lists them."""

    name: str
    extra: str  # the llmops extra that installs it
    modules: tuple[str, ...]  # top-level modules that prove it is installed
    package: str  # the distribution to name in errors
    failures: tuple[FailurePattern, ...]
    supports: frozenset[str]  # the engine settings (llmops/profiles/serving.py) its launch uses

    def launch(self, settings: ServeSettings) -> Launch: ...


def unsupported(engine: Any, resolved: Any) -> list[str]:
    """Engine settings that were set (flag, environment, workspace or profile) but this engine ignores."""
    found = []
    for name, setting in resolved.items():
        spec = BY_NAME.get(name)
        if spec is None or spec.scope != "engine" or name in engine.supports:
            continue
        if setting.origin == "node":  # a machine's settings are for the engines that take them
            continue
        if is_set(spec, setting.value, setting.origin):
            found.append(f"{name}={setting.value!r} ({where(name, setting.origin)})")
    return found


def check_supported(engine: Any, resolved: Any) -> None:
    """Refuse settings the engine would silently drop (and the plan would still count)."""
    found = unsupported(engine, resolved)
    if found:
        raise UsageError(
            f"engine {engine.name} does not use {'this setting' if len(found) == 1 else 'these settings'}: "
            + "; ".join(found),
            hint=f"remove {'it' if len(found) == 1 else 'them'}, or serve with an engine that uses "
            f"{'it' if len(found) == 1 else 'them'} (--engine vllm)",
        )


def gpu_server_launch(
    engine: str, s: ServeSettings, argv: list[str], *, served_name: str | None = None
) -> Launch:
    """A GPU server loading a Hugging Face checkpoint: secrets passed by name, ready on /health."""
    return Launch(
        engine=engine,
        argv=[*argv, *s.get("extra_args", [])],
        env_from_host=list(SECRET_ENV),
        host=s["host"],
        port=s["port"],
        served_name=served_name or s.served_name,
        health_path="/health",
        needs_gpu=True,
    )


def hf_checkpoint(s: ServeSettings, engine: str) -> str:
    """The Hugging Face id or local checkpoint dir an HF-only engine loads; GGUF files are llama.cpp's."""
    src = s.model.source
    if not (src.hf or src.path):
        raise UsageError(
            f"{engine} serves Hugging Face checkpoints", hint="use --engine llamacpp for GGUF files"
        )
    return src.hf or src.path or ""
