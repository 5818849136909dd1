"""Short options mean one thing everywhere: every one-letter option in the CLI is in SHORT_OPTIONS."""

from __future__ import annotations

import typer.main

from llmops.cli import app
from llmops.options import SHORT_OPTIONS


def _walk(command, path: str, found: dict[str, set[tuple[str, str]]]) -> None:
    for param in getattr(command, "params", []):
        longs = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
        for opt in (*param.opts, *param.secondary_opts):
            if len(opt) == 2 and opt.startswith("-") and longs:
                found.setdefault(opt, set()).add((longs[0], path))
    for name, sub in getattr(command, "commands", {}).items():
        _walk(sub, f"{path} {name}", found)


def test_every_short_option_means_one_long_option() -> None:
    found: dict[str, set[tuple[str, str]]] = {}
    _walk(typer.main.get_command(app), "llmops", found)
    assert found, "the walk found no options"
    for short, uses in found.items():
        assert short in SHORT_OPTIONS, f"{short} is not decided in llmops/options.py (used by {sorted(uses)})"
        wrong = sorted((long, where) for long, where in uses if long != SHORT_OPTIONS[short])
        assert not wrong, f"{short} means {SHORT_OPTIONS[short]}, but {wrong}"
    assert found["-n"] and all(long == "--node" for long, _ in found["-n"])
