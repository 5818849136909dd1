"""The inference guide's sampling presets by task. A preset fills in values; explicit settings still win."""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from llmops.errors import UsageError


@dataclass(frozen=True)
class Preset:
    name: str
    task: str
    values: dict[str, Any]
    n: int = 1  # answers per prompt
    note: str = field(default="")

    def describe(self) -> str:
        parts = [f"{k.replace('_', '-')} {v:g}" for k, v in self.values.items()]
        if self.n > 1:
            parts.append(f"n {self.n}")
        return f"{self.name}: {self.task} ({', '.join(parts)})"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "exact",
            "code, extraction, answers that must repeat",
            {"temperature": 0.0, "top_p": 1.0, "top_k": 1},
        ),
        Preset("assistant", "a general assistant", {"temperature": 0.7, "top_p": 0.9}),
        Preset(
            "creative",
            "stories, brainstorming",
            {"temperature": 1.1, "top_p": 0.95, "top_k": 100},
            note="the guide gives temperature 1.0-1.2",
        ),
        Preset(
            "explore", "several different candidates to choose from", {"temperature": 1.0, "top_k": 50}, n=5
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset, or a usage error listing them all (with the closest name)."""
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        close = get_close_matches(name, PRESETS, n=1)
        maybe = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"unknown preset '{name}'", hint=f"{maybe}presets: {', '.join(PRESETS)}")
    return preset


def presets_help() -> str:
    """One line per preset, for --help."""
    return "; ".join(p.describe() for p in PRESETS.values())
