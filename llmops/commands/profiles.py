"""`llmops profiles list|show|validate`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.errors import LlmopsError
from llmops.options import JsonOpt, complete_model, complete_node, complete_provider

app = typer.Typer(help="List, show and validate node, model and provider profiles.", no_args_is_help=True)

KINDS = ("node", "model", "provider")


def complete_any(incomplete: str) -> list[str]:
    return complete_model(incomplete) + complete_node(incomplete) + complete_provider(incomplete)


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="Only this kind: node, model or provider.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """List every profile with its aliases and the file it came from.

    Example: llmops profiles list --kind model
    """
    from llmops.errors import UsageError
    from llmops.profiles.summary import shadow_warnings, summarize
    from llmops.ui import warn

    st = state(ctx, json=json)
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown kind '{kind}'", hint="use node, model or provider")
    catalog = st.catalog()
    kinds = [k for k in KINDS if kind in (None, k)]
    rows = {k: [summarize(loaded) for loaded in catalog.all(k)] for k in kinds}
    for line in shadow_warnings(catalog, kinds):  # type: ignore[arg-type]
        warn(line)
    if st.json:
        from llmops.ui import print_json

        print_json(rows)
        return
    from llmops.ui import out, table

    for k, items in rows.items():
        out.print(
            table(
                f"{k}s",
                ["name", "aliases", "summary", "file"],
                (
                    [
                        r["name"] + (" (stale)" if r["stale"] else ""),
                        ", ".join(r["aliases"]),
                        r["summary"] + (f"; stale: {r['stale']}" if r["stale"] else ""),
                        r["file"],
                    ]
                    for r in items
                ),
            )
        )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Profile name or alias.", autocompletion=complete_any)],
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="node, model or provider (default: whichever matches).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Show one profile, fully resolved, and the file it came from.

    Example: llmops profiles show llama-70b
    """
    from llmops.profiles.summary import find_any

    st = state(ctx, json=json)
    found_kind, loaded = find_any(st.catalog(), name, kind)
    document = {
        **loaded.profile.model_dump(mode="json", exclude_none=True),
        "kind": found_kind,
        "file": str(loaded.source),
    }
    if st.json:
        from llmops.ui import print_json

        print_json(document)
        return
    import yaml

    from llmops.ui import err, out

    err.print(f"[dim]# {found_kind} '{loaded.profile.name}' from {loaded.source}[/dim]", highlight=False)
    out.print(yaml.safe_dump(document, sort_keys=False).rstrip(), highlight=False, markup=False)


@app.command("validate")
def validate(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: every folder on the search path).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Check profile files: every problem in every file, each with file:line and field. Exit 2 if any.

    Example: llmops profiles validate configs/
    """
    from llmops.profiles.summary import shadow_warnings
    from llmops.profiles.validate import validate_paths
    from llmops.ui import warn

    st = state(ctx, json=json)
    targets = list(paths) if paths else [d for d in st.catalog().dirs if d.is_dir()]
    report = validate_paths(targets, st.catalog())
    with contextlib.suppress(LlmopsError):  # a broken search path is reported as problems above
        for line in shadow_warnings(st.catalog(), list(KINDS), [Path(f) for f in report.files]):  # type: ignore[arg-type]
            warn(line)
    if st.json:
        from llmops.ui import print_json

        print_json(report)
    else:
        from llmops.ui import err

        for problem in report.problems:
            err.print(problem.render(), highlight=False, markup=False, soft_wrap=True)
        err.print(f"checked {len(report.files)} file(s): {len(report.problems)} problem(s)", highlight=False)
    if report.problems:
        raise typer.Exit(2)
