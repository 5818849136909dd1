"""Fixtures for the planner tests: the shipped profiles and checkpoint directories written to disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmops.profiles.loader import Catalog

LLAMA_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.discover()


@pytest.fixture
def checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """Write a checkpoint directory: config.json, and a safetensors index when total_size is given."""

    def make(config: dict[str, Any], total_size: int | None = None, name: str = "ckpt") -> Path:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "config.json").write_text(json.dumps(config))
        if total_size is not None:
            index = {
                "metadata": {"total_size": total_size},
                "weight_map": {"lm_head.weight": "model-1.safetensors"},
            }
            (directory / "model.safetensors.index.json").write_text(json.dumps(index))
        return directory

    return make
