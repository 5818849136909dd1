"""llama.cpp through llama-cpp-python's OpenAI-compatible server: the CPU default, and what the tests run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from llmops.errors import UsageError
from llmops.profiles.checkpoint import resolve_gguf_path
from llmops.serve.engines.base import COMMON_FAILURES, FailurePattern, Launch
from llmops.serve.engines.llamacpp_selfcheck import CHILD, embedded_gguf, fallback_note, verdict
from llmops.serve.settings import ServeSettings


class LlamaCpp:
    name = "llamacpp"
    extra = "llamacpp"
    modules = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "starlette_context")
    package = "llama-cpp-python[server]"
    crash_hint = (
        "a CPU kernel may have crashed on this processor: serve with --extra-buffer-types off, "
        "and run `llmops doctor --self-check` to check this machine's CPU paths again"
    )
    supports = frozenset(
        {
            "max_model_len",
            "quantization",
            "served_model_name",
            "chat_template",
            "n_threads",
            "extra_buffer_types",
            "extra_args",
        }
    )
    failures = (
        FailurePattern(
            r"Failed to load model from file|gguf_init_from_file|invalid magic",
            "llama.cpp could not read the model file: it must be a valid GGUF file",
        ),
        FailurePattern(
            r"unknown model architecture",
            "this llama-cpp-python build does not know the model's architecture: upgrade llama-cpp-python",
        ),
        *COMMON_FAILURES,
    )

    def launch(self, s: ServeSettings) -> Launch:
        source = s.model.source
        if not source.gguf:
            raise UsageError(
                f"llama.cpp serves GGUF files, but model '{s.model.name}' comes from {source.describe()}",
                hint="use --engine vllm, or a profile whose source is a .gguf file",
            )
        if s.tp * s.pp > 1:
            raise UsageError(
                "llama.cpp here serves one process on one machine; tensor/pipeline parallel is vLLM's",
                hint="drop --tp/--pp, or use --engine vllm",
            )
        if s["quantization"] not in ("none", "gguf"):
            raise UsageError(
                f"llama.cpp serves GGUF files; quantization '{s['quantization']}' does not apply",
                hint="quantize to GGUF, or use --engine vllm",
            )
        # llama-cpp-python's server (`python -m llama_cpp.server`) through a launcher that sets llama.cpp's
        # extra buffer types; `auto` is decided by the CPU self-check just before the start.
        argv = [
            sys.executable,
            "-P",
            str(CHILD),
            "serve",
            s["extra_buffer_types"],
            "--model",
            str(resolve_gguf_path(source)),
            "--model_alias",
            s.served_name,
            "--host",
            s["host"],
            "--port",
            str(s["port"]),
        ]
        if s.get("max_model_len"):
            argv += ["--n_ctx", str(s["max_model_len"])]
        argv += ["--n_threads", str(s["n_threads"])]  # resolved: a flag, else the node profile's cores
        # The server's default cuts off a running stream when a new request arrives; queue instead.
        argv += ["--interrupt_requests", "False"]
        if template := s.get("chat_template"):
            if Path(template).suffix in (".jinja", ".j2", ".txt") or "/" in template:
                raise UsageError(
                    f"llama-cpp-python's server takes a chat format name, not a template file ({template})",
                    hint="set serving.chat_template to a name such as chatml or llama-3, or leave it "
                    "unset to use the template inside the GGUF",
                )
            argv += ["--chat_format", template]
        argv += list(s.get("extra_args", []))
        return Launch(
            engine=self.name,
            argv=argv,
            host=s["host"],
            port=s["port"],
            served_name=s.served_name,
            health_path=None,
        )

    def before_start(self, launch: Launch, note: Callable[[str], None]) -> Launch:
        """Settle `auto` with the CPU self-check (a child process, once per machine and model)."""
        mode_at = launch.argv.index(str(CHILD)) + 2
        if launch.argv[mode_at] != "auto":
            return launch
        found, fresh = verdict(embedded_gguf() or Path(launch.argv[launch.argv.index("--model") + 1]))
        if found is not None and fresh and not found.extra_buffer_types:
            note(fallback_note(found))
        argv = list(launch.argv)
        argv[mode_at] = "off" if found is not None and not found.extra_buffer_types else "on"
        return replace(launch, argv=argv)


ENGINE = LlamaCpp()
