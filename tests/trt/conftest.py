"""A tiny real Llama checkpoint (random weights, a BPE tokenizer trained here) for fast export tests."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = [
    "The capital of France is Paris, and the capital of Italy is Rome.",
    "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "Water boils at a temperature of one hundred degrees Celsius at sea level.",
    "Once upon a time, a small robot learned to read the stars above the town.",
] * 4


def make_tiny_checkpoint(path: Path) -> Path:
    """Save a 2-layer Llama and a byte-level BPE tokenizer with no pad token (like SmolLM2's)."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    config = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmops.trt.export import export_onnx, load_for_export

    out = tmp_path_factory.mktemp("tiny-onnx") / "model.onnx"
    export_onnx(load_for_export(tiny_checkpoint), out)
    return out
