"""Short real benches against SmolLM2 on llama.cpp (slow: a real model on the CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmops.cli import app

pytestmark = pytest.mark.slow


def test_bench_a_running_llamacpp_server(smollm2_server: str) -> None:
    # llama-cpp-python interrupts a stream when another request arrives, so one request at a time.
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "--target",
            smollm2_server,
            "--model",
            "smollm2",
            "--num-prompts",
            "4",
            "--max-concurrency",
            "1",
            "--input-len",
            "32",
            "--output-len",
            "12",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["completed"] == 4 and doc["failed"] == 0
    assert doc["output_tokens_from"] == "chunks"  # this server streams no usage and no tokenizer was given
    assert 0 < doc["median_ttft_ms"] < doc["median_e2el_ms"]
    assert doc["mean_itl_ms"] > 0 and doc["output_throughput"] > 0


def test_bench_serves_smollm2_itself(tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmops",
            "bench",
            "smollm2",
            "--num-prompts",
            "3",
            "--max-concurrency",
            "1",
            "--input-len",
            "32",
            "--output-len",
            "8",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["config"]["served_by_llmops"] is True and doc["config"]["model_profile"] == "smollm2"
    assert doc["completed"] == 3
    assert doc["output_tokens_from"] == "tokenizer"  # the GGUF's own tokenizer counted the text after the run
    assert doc["input_tokens_from"] == "tokenizer"
    assert "TTFT" in proc.stdout
