"""The quantizers llmops knows, keyed by (method, format); adding one is one module and one entry here.

Each entry names the module that implements it, so the heavy library is imported only when it runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmops.errors import MissingExtra, UsageError
from llmops.progress import ProgressReporter


class Quantizer(Protocol):
    """One quantization backend: quantize a checkpoint directory into another directory."""

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
    method: str
    format: str
    module: str
    label: str
    bits: tuple[int, ...]
    grouped: bool
    calibrated: bool
    serve_quantization: dict[int, str]  # bits -> ModelProfile.serving.quantization
    extra: str
    modules: tuple[str, ...]

    def scheme(self, bits: int, group_size: int | None) -> str:
        if self.method == "bnb":
            return "nf4" if bits == 4 else "int8"
        return f"W{bits}A16" + (f" g{group_size}" if group_size else " per-channel")

    def slug(self, bits: int, group_size: int | None) -> str:
        """A default output directory suffix, e.g. w4a16-g64, gptq-w4-g64, bnb-nf4."""
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

    def load(self) -> Quantizer:
        return importlib.import_module(self.module).QUANTIZER


QUANTIZERS: dict[tuple[str, str], QuantizerSpec] = {
    ("gptq", "compressed-tensors"): QuantizerSpec(
        method="gptq",
        format="compressed-tensors",
        module="llmops.quantize.llmcompressor_gptq",
        label="GPTQ (llm-compressor)",
        bits=(4, 8),
        grouped=True,
        calibrated=True,
        serve_quantization={4: "compressed-tensors", 8: "compressed-tensors"},
        extra="quantize",
        modules=("llmcompressor", "compressed_tensors"),
    ),
    ("gptq", "gptq"): QuantizerSpec(
        method="gptq",
        format="gptq",
        module="llmops.quantize.gptqmodel_gptq",
        label="GPTQ (GPTQModel)",
        bits=(4, 8),
        grouped=True,
        calibrated=True,
        serve_quantization={4: "gptq", 8: "gptq"},
        extra="gptqmodel",
        modules=("gptqmodel",),
    ),
    ("bnb", "bitsandbytes"): QuantizerSpec(
        method="bnb",
        format="bitsandbytes",
        module="llmops.quantize.bnb",
        label="bitsandbytes",
        bits=(4, 8),
        grouped=False,
        calibrated=False,
        serve_quantization={4: "bnb-4bit", 8: "bnb-8bit"},
        extra="quantize",
        modules=("bitsandbytes",),
    ),
}
DEFAULT_FORMAT = {"gptq": "compressed-tensors", "bnb": "bitsandbytes"}


def spec_for(method: str, fmt: str | None) -> QuantizerSpec:
    fmt = fmt or DEFAULT_FORMAT[method]
    spec = QUANTIZERS.get((method, fmt))
    if spec is None:
        formats = [f for m, f in QUANTIZERS if m == method]
        raise UsageError(
            f"--format {fmt} is not available with --method {method}",
            hint=f"use --format {' or '.join(formats)}",
        )
    return spec
