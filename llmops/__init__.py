"""llmops: plan, serve, quantize, build and benchmark LLM inference from one CLI."""

__version__ = "0.1.0"
