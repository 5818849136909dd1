"""GPTQ with llm-compressor (`oneshot` + `GPTQModifier`): compressed-tensors output that vLLM loads natively.

llm-compressor re-reads the config from the model's path, so it runs from a checkpoint directory;
it needs `processor=` (the tokenizer) with a dataset. The model is calibrated in float32 and saved
with its unquantized parts (embeddings, norms, lm_head) in the checkpoint's 16-bit dtype.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.hf.loading import quiet_libraries
from llmops.progress import ProgressReporter
from llmops.quantize._hf import checkpoint_dtype, count_linear, linear_in_features
from llmops.quantize.groups import choose_group_size
from llmops.quantize.registry import QuantizerSpec

IGNORE = ["lm_head"]


class LlmCompressorGptq:
    spec = QuantizerSpec(
        method="gptq",
        format="compressed-tensors",
        label="GPTQ (llm-compressor)",
        bits=(4, 8),
        grouped=True,
        calibrated=True,
        serve_quantization={4: "compressed-tensors", 8: "compressed-tensors"},
        extra="quantize",
        modules=("llmcompressor", "compressed_tensors"),
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
        from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
        from datasets import Dataset

        _import_llmcompressor_quietly()
        from llmcompressor import oneshot
        from llmcompressor.modifiers.quantization import GPTQModifier

        from llmops.hf.loading import load_model, load_tokenizer

        if not calibration:
            raise UsageError("GPTQ needs calibration samples", hint="give --calib FILE or leave it out")
        tokenizer = load_tokenizer(checkpoint)
        model = load_model(checkpoint, dtype="float32")
        choose_group_size(linear_in_features(model, tuple(IGNORE)), group_size)  # refuse before the slow part
        weights = QuantizationArgs(
            num_bits=bits,
            type="int",
            symmetric=True,
            strategy="group" if group_size else "channel",
            group_size=group_size,
        )
        recipe = GPTQModifier(
            config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=weights)}, ignore=IGNORE
        )
        dataset = Dataset.from_list(
            [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in calibration]
        )
        total = count_linear(model, tuple(IGNORE))
        progress.start(total, f"GPTQ {len(calibration)} samples x {len(calibration[0])} tokens")
        sink = _progress_sink(progress, verbose)
        try:
            model = oneshot(
                model=model,
                dataset=dataset,
                recipe=recipe,
                processor=tokenizer,
                num_calibration_samples=len(calibration),
                max_seq_length=max(len(c) for c in calibration),
                shuffle_calibration_samples=False,
                pipeline="sequential",
            )
        finally:
            sink()
            progress.finish()
        model.to(getattr(torch, checkpoint_dtype(checkpoint)))  # unquantized parts saved in 16-bit
        model.save_pretrained(out_dir, save_compressed=True)
        tokenizer.save_pretrained(out_dir)
        return {"quantized_modules": total, "ignored": IGNORE}


def _import_llmcompressor_quietly() -> None:
    """llm-compressor logs to stdout, from import time on; llmops keeps stdout for its result (--json).
    Import it with stdout pointed at stderr, then drop its console sink (ours are added per run)."""
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        from llmcompressor.logger import LoggerConfig, configure_logger

    configure_logger(LoggerConfig(console_log_level=None))


def _progress_sink(progress: ProgressReporter, verbose: bool):
    """Route llm-compressor's loguru messages: 'Quantizing N module(s)' advances the bar; the rest go
    to stderr with -v and nowhere otherwise (llm-compressor logs to stdout by default, which --json needs)."""
    import sys

    from loguru import logger

    def on_message(message: Any) -> None:
        text = message.record["message"]
        if text.startswith("Quantizing "):
            count = text.split(" ", 2)[1]
            name = text.rsplit("'", 2)[-2] if "'" in text else ""
            progress.update(int(count) if count.isdigit() else 1, module=name)

    ids = [logger.add(on_message, level="INFO", filter="llmcompressor")]
    if verbose:
        ids.append(logger.add(sys.stderr, level="INFO"))

    def remove() -> None:
        for sink_id in ids:
            logger.remove(sink_id)

    return remove


QUANTIZER = LlmCompressorGptq()
