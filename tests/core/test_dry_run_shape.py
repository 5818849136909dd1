"""Every command's `--dry-run --json` is one document shape: command, settings {name: {value, origin}}, extras."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app

ORIGINS = {"flag", "env", "workspace", "profile", "checkpoint", "default"}
COMMANDS = {
    "serve": ["serve", "llama-70b", "--tp", "4", "--dry-run", "--json"],
    "bench": ["bench", "smollm2", "--num-prompts", "5", "--dry-run", "--json"],
    "batch submit": [
        "batch",
        "submit",
        "prompts.jsonl",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--dry-run",
        "--json",
    ],
    "quantize": ["quantize", "--bits", "4", "--dry-run", "--json"],
    "trt build": ["trt", "build", "smollm2", "--precision", "fp32", "--dry-run", "--json"],
    "gateway": ["gateway", "--port", "4001", "--no-probe", "--dry-run", "--json"],
    "try": ["try", "smollm2", "hello", "--temperature", "0", "--dry-run", "--json"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_one_dry_run_shape(command: str, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / "prompts.jsonl").write_text('{"prompt": "hello"}\n')
    monkeypatch.setenv("LLMOPS_MODEL", "smollm2")  # the environment layer shows up in the origins
    res = CliRunner().invoke(app, COMMANDS[command])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == command
    settings = doc["settings"]
    assert settings, "no settings listed"
    for name, entry in settings.items():
        assert set(entry) == {"value", "origin"}, (name, entry)
        assert entry["origin"] in ORIGINS, (name, entry)
    flagged = {n for n, e in settings.items() if e["origin"] == "flag"}
    assert flagged, f"{command}: no setting says it came from a flag"
    if command == "quantize":  # the model comes from $LLMOPS_MODEL here, and says so
        assert settings["model"] == {"value": "smollm2", "origin": "env"}
