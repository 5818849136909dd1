"""Pick each setting by explicit precedence and remember where it came from (shown by --dry-run)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Origin = Literal["flag", "env", "workspace", "profile", "default"]


@dataclass(frozen=True)
class Setting(Generic[T]):
    value: T
    origin: Origin


def pick(
    flag: Any = None,
    *,
    env: str | None = None,
    workspace: Any = None,
    profile: Any = None,
    default: Any = None,
    cast: Any = None,
) -> Setting:
    """The first value that is set, in the order flag > env > workspace > profile > default."""
    if flag is not None:
        return Setting(flag, "flag")
    if env and (raw := os.environ.get(env)) not in (None, ""):
        return Setting(cast(raw) if cast else raw, "env")
    if workspace is not None:
        return Setting(workspace, "workspace")
    if profile is not None:
        return Setting(profile, "profile")
    return Setting(default, "default")
