"""Helpers for the serve tests: the CLI in-process and as a real subprocess."""

from __future__ import annotations

import json
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


def pool_70b_tp4_pp2(pool: Path) -> list[str]:
    """`serve llama-70b` at TP 4 x PP 2 on the two-node A100 pool: one node's GPUs per pipeline stage."""
    return [
        "--profiles-dir",
        str(pool),
        "serve",
        "llama-70b",
        "--node",
        "a100-pool",
        "--tp",
        "4",
        "--pp",
        "2",
    ]


def start_serve(port: int, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """`llmops serve smollm2 --port PORT EXTRA...` as a real subprocess, stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "llmops", "serve", "smollm2", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def serve_ready(port: int, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict]:
    """`llmops serve smollm2 --json` started and ready: the process and the endpoint document it printed."""
    proc = start_serve(port, env, "--json")
    assert proc.stdout is not None
    text = ""
    while not text.rstrip().endswith("}"):  # one JSON document on stdout once ready
        line = proc.stdout.readline()
        assert line, proc.communicate(timeout=30)[1]
        text += line
    return proc, json.loads(text)
