"""Hugging Face checkpoints on disk: materialize one from a profile (GGUF included), tokenizers, perplexity.

Shared by `llmops quantize` and `llmops trt`. torch and transformers are imported inside functions only.
"""
