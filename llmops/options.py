"""Options shared by several commands, defined once so each means the same everywhere.

Short options are decided here, once, and mean one thing in every command:
`-n --node`, `-m --model` (the model name sent to an endpoint), `-e --engine`, `-o --output`,
`-p --provider`, `-t --target`, `-q --quantization`, `-v --verbose`, `-h --help`; `-c` is only the root
`--config`. Used by one command only: `-b --bits` and `-g --group-size` (quantize), `-r --request-rate`
(bench). A command adds no other one-letter option without adding it to this list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _names(kind: str, incomplete: str) -> list[str]:
    """Profile names and aliases for shell completion (loaded only when completing)."""
    try:
        from llmops.profiles.loader import Catalog

        return [n for n in Catalog.discover().names(kind) if n.startswith(incomplete)]  # type: ignore[arg-type]
    except Exception:  # completion must never crash the shell
        return []


def complete_model(incomplete: str) -> list[str]:
    return _names("model", incomplete)


def complete_node(incomplete: str) -> list[str]:
    return _names("node", incomplete)


def complete_provider(incomplete: str) -> list[str]:
    return _names("provider", incomplete)


ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="Model profile name or alias, a checkpoint directory, or a .gguf file. "
        "Default: the workspace's model (llmops.yaml), else smollm2.",
        show_default=False,
        autocompletion=complete_model,
    ),
]
NodeOpt = Annotated[
    str | None,
    typer.Option(
        "--node",
        "-n",
        help="Node profile (default: the workspace's, else the model's).",
        autocompletion=complete_node,
    ),
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
    str | None,
    typer.Option(
        "--provider",
        "-p",
        help="Provider profile (openai, anthropic, local, ...).",
        autocompletion=complete_provider,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would run, and where each value came from; run nothing.")
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the result.")]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Replace an existing output (a folder only when llmops wrote it)."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="Base URL of a running OpenAI-compatible or Anthropic endpoint (http(s)://HOST:PORT/v1).",
    ),
]
ModelNameOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model name sent in requests (default: the profile's served name, else the target's first model).",
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", "-e", help="Engine: vllm, llamacpp, sglang, trtllm (default: the profile's)."),
]
