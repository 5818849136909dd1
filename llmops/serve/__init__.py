"""Serve a model: profiles -> engine argv -> a supervised, ready OpenAI-compatible endpoint.

`with running(model, node) as ep:` is the library entry point (bench uses it); `llmops serve` is the CLI.
Engines run as subprocesses; exports load on first use, so importing `llmops.serve.engines` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Endpoint": "llmops.serve.api",
    "Prepared": "llmops.serve.api",
    "dry_run": "llmops.serve.api",
    "prepare": "llmops.serve.api",
    "prepare_for": "llmops.serve.api",
    "running": "llmops.serve.api",
    "supervise": "llmops.serve.api",
    "serve_foreground": "llmops.serve.foreground",
    "manifests": "llmops.serve.k8s",
    "to_yaml": "llmops.serve.k8s",
    "write_manifests": "llmops.serve.k8s",
    "ray_steps": "llmops.serve.ray",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llmops.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
