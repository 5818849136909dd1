"""Helpers for the serve tests: the CLI in-process and as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
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


def popen_llmops(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    out = log.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "llmops", *args], stdout=subprocess.PIPE, stderr=out, text=True, env=env
    )
