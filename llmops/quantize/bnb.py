"""bitsandbytes through transformers (`BitsAndBytesConfig`): NF4 with double quantization, or LLM.int8.

The weights are quantized while loading and saved as a pre-quantized checkpoint that vLLM serves
(`--quantization bitsandbytes`). bitsandbytes 0.45+ runs on the CPU too; where a build cannot, the
error is exit 3 naming what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.errors import EnvironmentMissing
from llmops.hf.loading import quiet_libraries
from llmops.progress import ProgressReporter
from llmops.quantize._hf import checkpoint_dtype, count_linear
from llmops.quantize.registry import QuantizerSpec

SKIP = ["lm_head"]


class BitsAndBytes:
    spec = QuantizerSpec(
        method="bnb",
        format="bitsandbytes",
        label="bitsandbytes",
        bits=(4, 8),
        grouped=False,
        calibrated=False,
        serve_quantization={4: "bnb-4bit", 8: "bnb-8bit"},
        extra="quantize",
        modules=("bitsandbytes",),
    )

    def quantize(
        self,
        checkpoint: Path,
        out_dir: Path,
        *,
        bits: int,
        group_size: int | None,
        calibration: list[list[int]] | None,
        progress: ProgressReporter,
        verbose: bool = False,
    ) -> dict[str, Any]:
        quiet_libraries(verbose)
        import torch
        from transformers import BitsAndBytesConfig

        from llmops.hf.loading import load_model, load_tokenizer

        compute_name = checkpoint_dtype(checkpoint)
        compute = getattr(torch, compute_name)
        if bits == 4:
            config = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
                bnb_4bit_quant_storage=torch.uint8,
                llm_int8_skip_modules=SKIP,
            )
        else:
            config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        progress.start(None, f"bitsandbytes {'NF4' if bits == 4 else 'int8'} on {device}")
        try:
            model = load_model(checkpoint, dtype=compute_name, quantization_config=config, device_map=device)
            modules = count_linear(model, tuple(SKIP))
            progress.update(modules, modules=modules)
            model.save_pretrained(out_dir, safe_serialization=True)
        except (RuntimeError, NotImplementedError) as exc:
            if "cuda" in str(exc).lower() or "gpu" in str(exc).lower():
                raise EnvironmentMissing(
                    f"bitsandbytes could not quantize to {bits}-bit on {device}: {exc}",
                    hint="this build of bitsandbytes needs an NVIDIA GPU for it; "
                    "pip install -U 'bitsandbytes>=0.45' for CPU support, or run on a GPU machine",
                ) from exc
            raise
        finally:
            progress.finish()
        load_tokenizer(checkpoint).save_pretrained(out_dir)
        return {
            "quantized_modules": modules,
            "ignored": SKIP,
            "device": device,
            "compute_dtype": str(compute).removeprefix("torch."),
            "scheme_detail": "NF4, double quantization, blocksize 64" if bits == 4 else "LLM.int8",
        }


QUANTIZER = BitsAndBytes()
