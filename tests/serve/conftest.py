"""Helpers for the serve tests: the CLI in-process and as a real subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli():
    """Run `llmops ARGS` in-process; returns the typer Result (stdout and stderr apart)."""
    from llmops.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def llmops_env() -> dict[str, str]:
    """The environment for a `python -m llmops` subprocess that imports this checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def a100_pool(tmp_path: Path) -> Path:
    """A profiles dir with a pool of 2 nodes x 4 A100 40GB: room for TP 4 x PP 2 across nodes."""
    nodes = tmp_path / "profiles" / "nodes"
    nodes.mkdir(parents=True)
    (nodes / "a100-pool.yaml").write_text(
        "name: a100-pool\n"
        "gpu: {model: NVIDIA A100-SXM4-40GB, count: 4, memory_gib: 39.39, interconnect: nvlink}\n"
        "cpu: {cores: 64, ram_gib: 512}\ncount: 2\nlabels: {gpu-type: a100-40gb}\n"
    )
    return tmp_path / "profiles"
