"""Helpers the torch-based quantizers share: quiet libraries, 16-bit saving, the checkpoint's dtype."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def quiet_libraries(verbose: bool) -> None:
    """Keep stdout for llmops' own result: library progress bars and info logs only with -v."""
    if verbose:
        return
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def checkpoint_dtype(checkpoint: Path) -> str:
    """The 16-bit dtype the checkpoint was saved in (bfloat16 when it says float32 or nothing)."""
    try:
        config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "bfloat16"
    dtype = config.get("dtype") or config.get("torch_dtype")
    return dtype if dtype in ("bfloat16", "float16") else "bfloat16"


def count_linear(model: Any, skip: tuple[str, ...] = ("lm_head",)) -> int:
    import torch

    return sum(
        1
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.split(".")[-1] not in skip
    )


def linear_in_features(model: Any, skip: tuple[str, ...] = ("lm_head",)) -> set[int]:
    """Input sizes of the Linear layers that will be quantized, from the real modules."""
    import torch

    return {
        m.in_features
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.split(".")[-1] not in skip
    }
