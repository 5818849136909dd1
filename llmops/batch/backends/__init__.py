"""The registry of batch backends. Adding one is adding one module with a class that fills `Backend`."""

from __future__ import annotations

from llmops.batch.backends.base import Backend
from llmops.registry import Registry

BACKENDS: Registry[type[Backend]] = Registry(
    "batch backend",
    {
        "openai": "llmops.batch.backends.openai_batch:OpenAIBackend",
        "anthropic": "llmops.batch.backends.anthropic_batch:AnthropicBackend",
        "local": "llmops.batch.backends.local:LocalBackend",
    },
)

# Which backend runs a provider profile's `api`.
API_BACKEND: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "openai-compatible": "local",
    "google": "local",
}


def get_backend(name: str) -> Backend:
    """The backend for a name, imported only when used (its SDK stays out of `--help`)."""
    return BACKENDS.get(name)()
