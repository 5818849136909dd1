"""Helpers the torch-based quantizers share: the checkpoint's 16-bit dtype, the Linear layers to quantize."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
