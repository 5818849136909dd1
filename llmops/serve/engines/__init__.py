"""The engine registry: adding an engine is adding one module that fills `base.Engine`."""

from __future__ import annotations

from llmops.errors import UsageError
from llmops.serve.engines import llamacpp, sglang, trtllm, vllm
from llmops.serve.engines.base import Engine, FailurePattern, Launch

ENGINES: dict[str, Engine] = {e.ENGINE.name: e.ENGINE for e in (vllm, llamacpp, sglang, trtllm)}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine '{name}'", hint=f"use one of: {', '.join(ENGINES)}") from None


__all__ = ["ENGINES", "Engine", "FailurePattern", "Launch", "get_engine"]
