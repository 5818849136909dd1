"""The library entry point: a resolved bench -> (result, measured points). Serves the model first if asked."""

from __future__ import annotations

from pathlib import Path

from llmops.bench.config import Resolved, discover_model
from llmops.bench.endpoints import normalize_target
from llmops.bench.result import BenchResult, load_figures
from llmops.bench.run import Point, run_bench
from llmops.bench.workload import load_tokenizer
from llmops.progress import ProgressReporter


def bench(
    resolved: Resolved,
    *,
    progress: ProgressReporter | None = None,
    serve_progress: ProgressReporter | None = None,
) -> tuple[BenchResult, list[Point]]:
    """Run the bench `resolved` describes; with no target, serve its model profile for the duration."""
    cfg = resolved.config
    baseline = load_figures(Path(cfg.baseline)) if cfg.baseline else None
    # Prompts are tokenized before the run and output counted after it; never on the event loop.
    tokenizer = load_tokenizer(resolved.model_profile.profile.source) if resolved.model_profile else None
    kwargs = {
        "api_key": resolved.api_key,
        "tokenizer": tokenizer,
        "prices": resolved.prices,
        "baseline": baseline,
        "progress": progress,
    }
    if resolved.needs_server:
        from llmops.serve import running

        with running(
            resolved.model_profile.profile, resolved.node_profile.profile, port=None, progress=serve_progress
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
