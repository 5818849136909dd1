"""TensorRT-LLM's `trtllm-serve` (PyTorch backend, loads Hugging Face checkpoints directly)."""

from __future__ import annotations

from llmops.errors import UsageError
from llmops.serve.engines.base import COMMON_FAILURES, SECRET_ENV, Launch
from llmops.serve.settings import ServeSettings


class TrtLlm:
    name = "trtllm"
    extra = "trtllm"
    modules = ("tensorrt_llm",)
    package = "tensorrt-llm"
    failures = COMMON_FAILURES

    def launch(self, s: ServeSettings) -> Launch:
        src = s.model.source
        if not (src.hf or src.path):
            raise UsageError(
                "trtllm-serve serves Hugging Face checkpoints", hint="use --engine llamacpp for GGUF files"
            )
        argv = [
            "trtllm-serve",
            src.hf or src.path or "",
            "--host",
            s["host"],
            "--port",
            str(s["port"]),
            "--backend",
            "pytorch",
            "--tp_size",
            str(s.tp),
            "--pp_size",
            str(s.pp),
        ]
        if s.get("max_model_len"):
            argv += ["--max_seq_len", str(s["max_model_len"])]
        if s.get("max_num_seqs"):
            argv += ["--max_batch_size", str(s["max_num_seqs"])]
        if s.get("max_num_batched_tokens"):
            argv += ["--max_num_tokens", str(s["max_num_batched_tokens"])]
        argv += list(s.get("extra_args", []))
        # trtllm-serve names the model after its source; clients must use that name.
        return Launch(
            engine=self.name,
            argv=argv,
            env_from_host=list(SECRET_ENV),
            host=s["host"],
            port=s["port"],
            served_name=src.hf or src.path or s.served_name,
            health_path="/health",
            needs_gpu=True,
        )


ENGINE = TrtLlm()
