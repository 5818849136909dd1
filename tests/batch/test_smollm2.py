"""The done-when run: 200 requests through the local runner against the real SmolLM2 llama.cpp server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_200_requests_against_real_smollm2(tmp_path: Path, bt, smollm2_server: str) -> None:
    n = 200
    path = bt.write_lines(
        tmp_path / "prompts.jsonl",
        [{"custom_id": f"q{i}", "prompt": f"Say the number {i}."} for i in range(n)],
    )
    out = tmp_path / "results.jsonl"
    proc = bt.run_cli(
        "batch",
        "submit",
        str(path),
        "--provider",
        "local",
        "--base-url",
        smollm2_server,
        "--model",
        "smollm2",
        "--max-tokens",
        "8",
        "--concurrency",
        "4",
        "--wait",
        "--json",
        "-o",
        str(out),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["state"] == "completed" and doc["counts"] == {"total": n, "succeeded": n, "failed": 0}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == n
    assert [ln["custom_id"] for ln in lines] == [f"q{i}" for i in range(n)]
    for ln in lines:
        body = ln["response"]["body"]
        assert ln["response"]["status_code"] == 200 and ln["error"] is None
        assert body["object"] == "chat.completion"
        assert 0 < body["usage"]["completion_tokens"] <= 8
        assert isinstance(body["choices"][0]["message"]["content"], str)
