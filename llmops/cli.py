"""The root app: global options and the command groups. Nothing else happens here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.commands import (
    batch,
    bench,
    doctor,
    gateway,
    init,
    monitor,
    plan,
    profiles,
    quantize,
    serve,
    trt,
    try_,
)
from llmops.commands._group import LlmopsGroup
from llmops.context import AppState

app = typer.Typer(
    cls=LlmopsGroup,
    name="llmops",
    help="Plan, serve, quantize, build and benchmark LLM inference, on your GPUs and on cloud APIs.\n\n"
    "Example: llmops plan llama-70b --node a100-40gb-x4",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from llmops import __version__

        typer.echo(f"llmops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profiles_dir: Annotated[
        Path | None,
        typer.Option(
            "--profiles-dir",
            help="Look here first for nodes/, models/, providers/.",
            envvar=None,
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Workspace file (default: ./llmops.yaml).")
    ] = None,
    json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output: one JSON document on stdout.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    ctx.obj = AppState(profiles_dir=profiles_dir, config=config, json=json, verbose=verbose)


# In the order of a model's life: will it fit, serve it, shrink it, build it, use it, measure it.
app.command("plan")(plan.plan)
app.command("serve")(serve.serve)
app.command("quantize")(quantize.quantize)
app.add_typer(trt.app, name="trt")
app.add_typer(batch.app, name="batch")
app.command("bench")(bench.bench)
app.command("try")(try_.try_)
app.add_typer(
    gateway.app, name="gateway", help="One OpenAI- and Anthropic-compatible endpoint in front of the fleet."
)
app.add_typer(monitor.app, name="monitor")
app.add_typer(profiles.app, name="profiles")
app.command("init")(init.init)
app.command("doctor")(doctor.doctor)


def main() -> None:
    app(prog_name="llmops")
