"""llama.cpp through llama-cpp-python's OpenAI-compatible server: the CPU default, and what the tests run."""

from __future__ import annotations

import sys
from pathlib import Path

from llmops.errors import UsageError
from llmops.profiles.checkpoint import resolve_gguf_path
from llmops.serve.engines.base import COMMON_FAILURES, FailurePattern, Launch
from llmops.serve.settings import ServeSettings


class LlamaCpp:
    name = "llamacpp"
    extra = "llamacpp"
    modules = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "starlette_context")
    package = "llama-cpp-python[server]"
    supports = frozenset(
        {"max_model_len", "quantization", "served_model_name", "chat_template", "n_threads", "extra_args"}
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
        argv = [
            sys.executable,
            "-m",
            "llama_cpp.server",
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


ENGINE = LlamaCpp()
