"""The quantizers llmops knows (`llmops.registry.Registry`), keyed "method/format"; adding one is one module
(a QUANTIZER with its spec) and one entry here. The heavy library is imported only when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmops.errors import MissingExtra, UsageError
from llmops.progress import ProgressReporter
from llmops.registry import Registry


class Quantizer(Protocol):
    """One quantization backend: quantize a checkpoint directory into another directory."""

    spec: QuantizerSpec

    def quantize(
        self,
        checkpoint: Path,
        out_dir: Path,
        *,
        bits: int,
        group_size: int | None,
        calibration: list[list[int]] | None,
        progress: ProgressReporter,
        verbose: bool = False,
    ) -> dict[str, Any]:
        """Write a loadable Hugging Face checkpoint to out_dir; return facts for the report."""


@dataclass(frozen=True)
class QuantizerSpec:
    """What a quantizer does and needs, declared beside its implementation (each module's QUANTIZER.spec)."""

    method: str
    format: str
    label: str
    bits: tuple[int, ...]
    grouped: bool
    calibrated: bool
    serve_quantization: dict[int, str]  # bits -> ModelProfile.serving.quantization
    extra: str
    modules: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.method}/{self.format}"

    def scheme(self, bits: int, group_size: int | None) -> str:
        if self.method == "bnb":
            return "nf4" if bits == 4 else "int8"
        return f"W{bits}A16" + (f" g{group_size}" if group_size else " per-channel")

    def slug(self, bits: int, group_size: int | None) -> str:
        """A default output directory suffix, e.g. w4a16-g64, gptq-w4a16-g64, bnb-nf4."""
        if self.method == "bnb":
            return f"bnb-{self.scheme(bits, None)}"
        prefix = "gptq-" if self.format == "gptq" else ""
        return f"{prefix}w{bits}a16" + (f"-g{group_size}" if group_size else "")

    def require(self) -> None:
        """Raise MissingExtra (exit 3) naming the extra when the backend is not installed; imports nothing."""
        import importlib.util

        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                raise MissingExtra(module.replace("_", "-"), self.extra, purpose=f"{self.label} quantization")


# "method/format" -> the module's QUANTIZER. Those modules import nothing heavy until quantize() runs.
QUANTIZERS: Registry[Quantizer] = Registry(
    "quantizer",
    {
        "gptq/compressed-tensors": "llmops.quantize.llmcompressor_gptq:QUANTIZER",
        "gptq/gptq": "llmops.quantize.gptqmodel_gptq:QUANTIZER",
        "bnb/bitsandbytes": "llmops.quantize.bnb:QUANTIZER",
    },
    flag="--method/--format",
)
DEFAULT_FORMAT = {"gptq": "compressed-tensors", "bnb": "bitsandbytes"}


def methods() -> list[str]:
    return list(dict.fromkeys(name.split("/")[0] for name in QUANTIZERS))


def spec_for(method: str, fmt: str | None) -> QuantizerSpec:
    """The spec of the quantizer for --method/--format; exit 2 naming what is possible."""
    if method not in methods():
        raise UsageError(f"unknown --method '{method}'", hint=f"use {' or '.join(methods())}")
    fmt = fmt or DEFAULT_FORMAT[method]
    if f"{method}/{fmt}" not in QUANTIZERS:
        formats = [name.split("/")[1] for name in QUANTIZERS if name.startswith(f"{method}/")]
        raise UsageError(
            f"--format {fmt} is not available with --method {method}",
            hint=f"use --format {' or '.join(formats)}",
        )
    return QUANTIZERS.get(f"{method}/{fmt}").spec
