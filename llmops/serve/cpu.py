"""What this CPU offers that engines' native kernels care about (from /proc/cpuinfo; empty elsewhere)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

# The instruction sets whose kernels llama.cpp picks at run time and that have crashed in the field.
WATCHED_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


@dataclass(frozen=True)
class CpuFacts:
    model: str
    arch: str
    flags: tuple[str, ...]  # the watched flags this CPU reports, in WATCHED_FLAGS order

    @property
    def has_amx(self) -> bool:
        return any(f.startswith("amx") for f in self.flags)

    def describe(self) -> str:
        return f"{self.model} ({', '.join(self.flags) or 'no AVX2/AVX-512/AMX'})"


def parse_cpuinfo(text: str, arch: str = "x86_64") -> CpuFacts:
    """The first processor's model name and the watched flags it reports."""
    model, flags = "unknown CPU", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return CpuFacts(model, arch, tuple(f for f in WATCHED_FLAGS if f in flags))


def cpu_facts(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuFacts:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    return parse_cpuinfo(text, platform.machine())
