"""TensorRT-LLM's `trtllm-serve` (PyTorch backend, loads Hugging Face checkpoints directly)."""

from __future__ import annotations

from llmops.serve.engines.base import COMMON_FAILURES, Launch, gpu_server_launch, hf_checkpoint
from llmops.serve.settings import ServeSettings


class TrtLlm:
    name = "trtllm"
    extra = "trtllm"
    modules = ("tensorrt_llm",)
    package = "tensorrt-llm"
    failures = COMMON_FAILURES
    supports = frozenset(
        {
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "max_model_len",
            "max_num_seqs",
            "max_num_batched_tokens",
            "extra_args",
        }
    )

    def launch(self, s: ServeSettings) -> Launch:
        checkpoint = hf_checkpoint(s, "trtllm-serve")
        argv = [
            "trtllm-serve",
            checkpoint,
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
        # trtllm-serve names the model after its source; clients must use that name.
        return gpu_server_launch(self.name, s, argv, served_name=checkpoint)


ENGINE = TrtLlm()
