"""SGLang's server (`python -m sglang.launch_server`): registered so the engine layer stays open."""

from __future__ import annotations

import sys

from llmops.serve.engines.base import (
    COMMON_FAILURES,
    GPU_SERVER_SETTINGS,
    Launch,
    gpu_server_launch,
    hf_checkpoint,
)
from llmops.serve.settings import ServeSettings


class SGLang:
    name = "sglang"
    extra = "sglang"
    modules = ("sglang",)
    package = "sglang"
    failures = COMMON_FAILURES
    supports = GPU_SERVER_SETTINGS

    def launch(self, s: ServeSettings) -> Launch:
        src = s.model.source
        checkpoint = hf_checkpoint(s, "SGLang")
        argv = [
            sys.executable,
            "-m",
            "sglang.launch_server",
            "--model-path",
            checkpoint,
            "--served-model-name",
            s.served_name,
            "--host",
            s["host"],
            "--port",
            str(s["port"]),
            "--tp-size",
            str(s.tp),
            "--mem-fraction-static",
            f"{s['gpu_memory_utilization']:g}",
        ]
        if s.pp > 1:
            argv += ["--pp-size", str(s.pp)]
        if s.get("max_model_len"):
            argv += ["--context-length", str(s["max_model_len"])]
        if s["dtype"] != "auto":
            argv += ["--dtype", s["dtype"]]
        if s.get("max_num_seqs"):
            argv += ["--max-running-requests", str(s["max_num_seqs"])]
        if s.get("enable_prefix_caching") is False:  # SGLang's radix (prefix) cache is on by default
            argv.append("--disable-radix-cache")
        if template := s.get("chat_template"):
            argv += ["--chat-template", template]
        if src.revision:
            argv += ["--revision", src.revision]
        return gpu_server_launch(self.name, s, argv)


ENGINE = SGLang()
