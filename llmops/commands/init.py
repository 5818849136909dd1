"""`llmops init`: write a commented starter llmops.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.options import ForceOpt


def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("llmops.yaml"),
    model: Annotated[str, typer.Option(help="Default model profile.")] = "smollm2",
    node: Annotated[str, typer.Option(help="Default node profile.")] = "local-cpu",
    provider: Annotated[str, typer.Option(help="Default provider for batch jobs.")] = "local",
    force: ForceOpt = False,
) -> None:
    """Write a commented starter workspace file (llmops.yaml) for this repository.

    Example: llmops init --model llama-8b --node rtx4090-x8
    """
    from llmops.output import check_output_file, write_output_file
    from llmops.workspace import starter_text

    st = state(ctx)
    check_output_file(path, force=force)
    catalog = st.catalog()
    catalog.model(model)
    catalog.node(node)
    catalog.provider(provider)
    write_output_file(path, starter_text(model, node, provider), force=force)
    typer.echo(f"wrote {path}")
