"""Fixtures for the quantize tests: one converted SmolLM2 checkpoint per session, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An llmops data dir shared by the slow tests, so the GGUF is converted once per session."""
    return tmp_path_factory.mktemp("llmops-data")


@pytest.fixture(scope="session")
def smollm2_checkpoint(shared_data_dir: Path) -> Path:
    """The real SmolLM2-135M GGUF, de-quantized into a 16-bit Hugging Face checkpoint (once)."""
    from llmops.hf.checkpoint import materialize_checkpoint
    from llmops.profiles.loader import Catalog

    model = Catalog.discover(None).model("smollm2").profile
    return materialize_checkpoint(model, cache_dir=shared_data_dir / "checkpoints")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`python -m llmops ...` as a real subprocess, with this worktree first on the path."""
    repo = Path(__file__).resolve().parents[2]
    full_env = {
        **os.environ,
        "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "llmops", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


@pytest.fixture
def cli():
    return run_cli
