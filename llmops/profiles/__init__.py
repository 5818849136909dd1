"""Profiles: validated descriptions of GPU nodes, models and API providers."""

from llmops.profiles.loader import Catalog, Loaded, parse_profile, search_dirs
from llmops.profiles.schema import (
    Architecture,
    ModelProfile,
    NodeProfile,
    ProviderProfile,
    SamplingDefaults,
    ServingSettings,
)

__all__ = [
    "Architecture",
    "Catalog",
    "Loaded",
    "ModelProfile",
    "NodeProfile",
    "ProviderProfile",
    "SamplingDefaults",
    "ServingSettings",
    "parse_profile",
    "search_dirs",
]
