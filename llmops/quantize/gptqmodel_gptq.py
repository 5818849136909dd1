"""GPTQ with GPTQModel: the classic GPTQ checkpoint format (`quant_method: gptq`), for engines and tools
that expect it. (AutoGPTQ is archived; llmops does not use it.) GPTQModel is an optional extra that
compiles on install; on a 2-core machine it wants GPTQMODEL_CPU_WORKERS=2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llmops.errors import require_module
from llmops.hf.loading import quiet_libraries
from llmops.progress import ProgressReporter
from llmops.quantize.registry import QuantizerSpec


class GptqModelGptq:
    spec = QuantizerSpec(
        method="gptq",
        format="gptq",
        label="GPTQ (GPTQModel)",
        bits=(4, 8),
        grouped=True,
        calibrated=True,
        serve_quantization={4: "gptq", 8: "gptq"},
        extra="gptqmodel",
        modules=("gptqmodel",),
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
        os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(min(os.cpu_count() or 2, 8)))
        gptqmodel = require_module("gptqmodel", extra="gptqmodel", purpose="--format gptq (GPTQModel)")

        from llmops.hf.loading import load_tokenizer

        config = gptqmodel.QuantizeConfig(bits=bits, group_size=group_size or -1, sym=True, desc_act=False)
        samples = [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in calibration or []]
        progress.start(None, f"GPTQModel {len(samples)} samples")
        try:
            model = gptqmodel.GPTQModel.load(str(checkpoint), config)
            model.quantize(samples, batch_size=1)
            model.save(str(out_dir))
        finally:
            progress.finish()
        load_tokenizer(checkpoint).save_pretrained(out_dir)
        return {"ignored": ["lm_head"]}


QUANTIZER = GptqModelGptq()
