"""The engine registry: adding an engine is adding one module that fills `base.Engine`.

Modules are imported on first use (`llmops.registry.Registry`); the names come from the settings table.
"""

from __future__ import annotations

from llmops.profiles.serving import ENGINE_NAMES
from llmops.registry import Registry
from llmops.serve.engines.base import Engine, FailurePattern, Launch, check_supported, unsupported

ENGINES: Registry[Engine] = Registry(
    "engine", {name: f"llmops.serve.engines.{name}:ENGINE" for name in ENGINE_NAMES}, flag="--engine"
)


def get_engine(name: str) -> Engine:
    return ENGINES.get(name)


__all__ = ["ENGINES", "Engine", "FailurePattern", "Launch", "check_supported", "get_engine", "unsupported"]
