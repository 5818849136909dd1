"""The library entry point: a resolved bench -> (result, measured points). Serves the model first if asked."""

from __future__ import annotations

import json
from pathlib import Path

from llmops.bench.config import BenchSettings, discover_model
from llmops.bench.endpoints import normalize_target
from llmops.bench.result import BenchResult
from llmops.bench.run import Point, run_bench
from llmops.bench.workload import load_tokenizer
from llmops.errors import UsageError
from llmops.progress import ProgressReporter


def bench(
    resolved: BenchSettings,
    *,
    progress: ProgressReporter | None = None,
    serve_progress: ProgressReporter | None = None,
) -> tuple[BenchResult, list[Point]]:
    """Run the bench `resolved` describes; with no target, serve its model profile for the duration."""
    cfg = resolved.config
    # Prompts are tokenized before the run and output counted after it; never on the event loop.
    tokenizer = load_tokenizer(resolved.model_profile.profile.source) if resolved.model_profile else None
    kwargs = {
        "api_key": resolved.api_key,
        "tokenizer": tokenizer,
        "prices": resolved.prices,
        "baseline": resolved.baseline,
        "progress": progress,
    }
    if resolved.needs_server:
        from llmops.serve import running

        with running(
            resolved.model_profile.profile,
            resolved.node_profile.profile,
            port=None,
            progress=serve_progress,
            interrupt_on_death=True,  # a death stops the run at once with its report, not after the duration
        ) as ep:
            cfg = cfg.model_copy(
                update={"target": normalize_target(ep.base_url, cfg.endpoint), "model": cfg.model or ep.model}
            )
            return run_bench(cfg, **kwargs)
    if not cfg.model:
        cfg = cfg.model_copy(
            update={"model": discover_model(cfg.target), "origins": {**cfg.origins, "model": "target"}}
        )
    return run_bench(cfg, **kwargs)


def check_outputs(output: Path | None, html: Path | None, *, force: bool) -> None:
    """Refuse -o / --html before the run (missing folder, existing file without --force), not after it."""
    from llmops.output import check_output_file

    if (
        output is not None
        and html is not None
        and output.expanduser().absolute() == html.expanduser().absolute()
    ):
        raise UsageError(f"-o and --html both name {output}", hint="give the HTML report its own file")
    for path in (output, html):
        if path is not None:
            check_output_file(path, force=force)


def write_outputs(
    result: BenchResult, points: list[Point], output: Path | None, html: Path | None, *, force: bool
) -> None:
    """The result JSON and the HTML report, each written beside and swapped in whole."""
    from llmops.output import write_output_file

    if output is not None:
        write_output_file(output, json.dumps(result.model_dump(mode="json"), indent=2) + "\n", force=force)
    if html is not None:
        from llmops.bench.report_html import render

        write_output_file(html, render(result, points), force=force)
