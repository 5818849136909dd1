"""`llmops init`: write a commented starter llmops.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state


def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("llmops.yaml"),
    model: Annotated[str, typer.Option(help="Default model profile.")] = "smollm2",
    node: Annotated[str, typer.Option(help="Default node profile.")] = "local-cpu",
    provider: Annotated[str, typer.Option(help="Default provider for batch jobs.")] = "local",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter workspace file (llmops.yaml) for this repository.

    Example: llmops init --model llama-8b --node rtx4090-x8
    """
    from llmops.errors import UsageError
    from llmops.workspace import starter_text

    st = state(ctx)
    catalog = st.catalog()
    catalog.model(model)
    catalog.node(node)
    catalog.provider(provider)
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="edit it, or pass --force to replace it")
    path.write_text(starter_text(model, node, provider), encoding="utf-8")
    typer.echo(f"wrote {path}")
