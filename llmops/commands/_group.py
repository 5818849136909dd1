"""The root group: turns llmops errors into one line and an exit code, tracebacks only with -v."""

from __future__ import annotations

import os
import sys
import traceback

import typer
from typer.core import TyperGroup

from llmops.errors import EXIT_FAILED


def _verbose(ctx: typer.Context) -> bool:
    """-v as parsed: the root option, or a command's own -v (folded into the state by `context.state`)."""
    return bool(getattr(ctx.find_root().obj, "verbose", False))


def _say(message: str) -> None:
    """Print an error: the first line prefixed with 'error:', the rest indented under it."""
    from rich.markup import escape

    from llmops.ui import err

    for i, line in enumerate(message.splitlines() or [""]):
        prefix = "[bold red]error:[/bold red] " if i == 0 else "       "
        err.print(prefix + escape(line), highlight=False, soft_wrap=True)


def _is_cli_control(exc: Exception) -> bool:
    """Exit, Abort and usage errors belong to Typer (Click before 0.29): let it handle them."""
    return isinstance(exc, typer.Exit | typer.Abort) or type(exc).__module__.split(".")[0] in (
        "typer",
        "click",
    )


class LlmopsGroup(TyperGroup):
    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`llmops ... | head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None
        except KeyboardInterrupt:
            _say("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if _is_cli_control(exc):
                raise
            from llmops.errormap import map_exception

            if _verbose(ctx):
                traceback.print_exc()
            mapped = map_exception(exc)
            if mapped is None:
                _say(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)")
                raise typer.Exit(EXIT_FAILED) from None
            _say(mapped.render())
            raise typer.Exit(mapped.exit_code) from None
