"""Options shared by several commands, defined once so each means the same everywhere.

Short options are decided here, once, and mean one thing in every command:
`-n --node`, `-m --model` (the model name sent to an endpoint), `-e --engine`, `-o --output`,
`-p --provider`, `-t --target`, `-q --quantization`, `-w --wait`, `-r --request-rate`, `-b --bits`,
`-g --group-size`, `-k --kind`, `-v --verbose`, `-h --help`; `-c` is only the root `--config`.
A command adds no other one-letter option without adding it to SHORT_OPTIONS (a test walks the CLI).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

SHORT_OPTIONS = {
    "-n": "--node",
    "-m": "--model",
    "-e": "--engine",
    "-o": "--output",
    "-p": "--provider",
    "-t": "--target",
    "-q": "--quantization",
    "-w": "--wait",
    "-r": "--request-rate",
    "-b": "--bits",
    "-g": "--group-size",
    "-k": "--kind",
    "-v": "--verbose",
    "-h": "--help",
    "-c": "--config",
}

F = TypeVar("F", bound=Callable[..., Any])


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
# --- serving settings: flags built from the one table in llmops/profiles/serving.py ----------------


def _setting_option(spec: Any) -> Any:
    """The Annotated type of one setting's flag: its name, short form, choices, bounds and help."""
    from llmops.settings import env_var

    help_text = f"{spec.help} (env {env_var('serve', spec.name)})"
    if spec.type is bool:
        negative = "--no-" + spec.flag.removeprefix("--")
        return Annotated[
            bool | None, typer.Option(f"{spec.flag}/{negative}", help=help_text, show_default=False)
        ]
    names = [spec.flag, *([spec.short] if spec.short else [])]
    if spec.choices:
        choice = Enum(spec.name.title().replace("_", ""), {v: v for v in spec.choices}, type=str)  # type: ignore[misc]
        return Annotated[choice | None, typer.Option(*names, help=help_text, show_default=False)]
    bounds = {"min": spec.ge, "max": spec.le}
    kind = spec.type if spec.type in (int, float, str) else str
    return Annotated[
        kind | None,
        typer.Option(
            *names, help=help_text, show_default=False, **{k: v for k, v in bounds.items() if v is not None}
        ),
    ]


def setting_flags(command: str, *, after: str) -> Callable[[F], F]:
    """Give a command the serving-setting flags the table offers it, placed after parameter `after`.

    The command takes them as one keyword argument, `settings`: {setting name: value, None when not given}.
    """
    from llmops.profiles.serving import flags_for

    specs = flags_for(command)

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "settings"]
        cut = next(i for i, p in enumerate(own) if p.name == after) + 1
        added = [
            inspect.Parameter(
                spec.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_setting_option(spec)
            )
            for spec in specs
        ]
        params = [*own[:cut], *added, *own[cut:]]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.name != "ctx" else p for p in params]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {}
            for spec in specs:
                value = kwargs.pop(spec.name, None)
                values[spec.name] = value.value if isinstance(value, Enum) else value
            return func(*args, settings=values, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _table_option(name: str) -> Any:
    from llmops.profiles.serving import BY_NAME

    return _setting_option(BY_NAME[name])


# Single serving flags for commands that take one or two of them by hand (serve and plan take them all
# through `setting_flags`).
EngineOpt = _table_option("engine")
TpOpt = _table_option("tensor_parallel_size")
PpOpt = _table_option("pipeline_parallel_size")
MaxModelLenOpt = _table_option("max_model_len")
GpuMemUtilOpt = _table_option("gpu_memory_utilization")
