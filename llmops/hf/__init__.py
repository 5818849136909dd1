"""Hugging Face checkpoints on disk: materialize one from a profile (GGUF included), tokenizers, models,
perplexity. Shared by `llmops quantize`, `llmops trt` and `llmops bench`; nothing is ever downloaded.

torch and transformers are imported inside the functions only, so importing this package is cheap.
"""

from llmops.hf.checkpoint import is_checkpoint_dir, materialize_checkpoint
from llmops.hf.loading import load_model, load_tokenizer, tokenizer_for
from llmops.hf.perplexity import Perplexity, perplexity

__all__ = [
    "Perplexity",
    "is_checkpoint_dir",
    "load_model",
    "load_tokenizer",
    "materialize_checkpoint",
    "perplexity",
    "tokenizer_for",
]
