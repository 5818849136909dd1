"""Profiles: validated descriptions of GPU nodes, models and API providers.

Exports resolve on first use, so importing a light submodule (`llmops.profiles.serving`, the settings
table the CLI builds its flags from) does not load pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Catalog": "llmops.profiles.loader",
    "Loaded": "llmops.profiles.loader",
    "parse_profile": "llmops.profiles.loader",
    "search_dirs": "llmops.profiles.loader",
    "Architecture": "llmops.profiles.schema",
    "ModelProfile": "llmops.profiles.schema",
    "NodeProfile": "llmops.profiles.schema",
    "ProviderProfile": "llmops.profiles.schema",
    "SamplingDefaults": "llmops.profiles.schema",
    "ServingSettings": "llmops.profiles.schema",
    "name_resolves": "llmops.profiles.ownership",
    "written_by_llmops": "llmops.profiles.ownership",
    "check_profile_target": "llmops.profiles.ownership",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llmops.profiles' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
