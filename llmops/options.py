"""Options shared by several commands, defined once so each means the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="Model profile name or alias, a checkpoint directory, or a .gguf file. "
        "Default: the workspace's model (llmops.yaml), else smollm2.",
        show_default=False,
    ),
]
NodeOpt = Annotated[
    str | None, typer.Option("--node", "-n", help="Node profile (default: the model's or the workspace's).")
]
TpOpt = Annotated[
    int | None, typer.Option("--tp", min=1, help="Tensor-parallel size (GPUs per model replica).")
]
PpOpt = Annotated[int | None, typer.Option("--pp", min=1, help="Pipeline-parallel size.")]
MaxModelLenOpt = Annotated[
    int | None, typer.Option("--max-model-len", min=1, help="Longest sequence (prompt + output) in tokens.")
]
GpuMemUtilOpt = Annotated[
    float | None,
    typer.Option(
        "--gpu-memory-utilization",
        min=0.01,
        max=1.0,
        help="Fraction of each GPU's memory the engine may use.",
    ),
]
ProviderOpt = Annotated[
    str | None, typer.Option("--provider", "-p", help="Provider profile (openai, anthropic, local, ...).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would run, and where each value came from; run nothing.")
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the result.")]
