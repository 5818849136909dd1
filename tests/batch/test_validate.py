"""The whole input file is validated before anything is sent: every bad line, exit 2, nothing submitted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.batch.parse import BatchInputProblems, parse_input
from llmops.cli import app
from llmops.profiles.schema import BatchLimits

LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)


def test_every_bad_line_is_reported_with_its_number(tmp_path: Path, bt) -> None:
    path = bt.write_lines(
        tmp_path / "in.jsonl",
        [
            bt.chat_line("a", "hello"),  # 1 good
            '{"custom_id": "b", "method": "POST", ',  # 2 bad JSON
            {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions"},  # 3 body missing
            bt.chat_line("a", "again"),  # 4 duplicate custom_id
            {**bt.chat_line("d", "x"), "url": "/v1/chat/complete"},  # 5 wrong URL
            {"custom_id": "e", "method": "GET", "url": "/v1/chat/completions", "body": {}},  # 6 method
            "[1, 2]",  # 7 not an object
            {"hello": "world"},  # 8 neither form
            {"prompt": "p", "messages": [{"role": "user", "content": "m"}]},  # 9 both
            {**bt.chat_line("f", "y"), "extra": 1},  # 10 unknown field
            {
                "custom_id": "g",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "m", "input": "x"},
            },  # 11
        ],
    )
    with pytest.raises(BatchInputProblems) as info:
        parse_input(path, backend="openai", limits=LIMITS)
    by_line = {}
    for p in info.value.problems:
        by_line.setdefault(p.line, []).append(p)
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "not valid JSON" in by_line[2][0].message
    assert by_line[3][0].field == "body" and "required" in by_line[3][0].message.lower()
    assert "already used on line 1" in by_line[4][0].message
    assert by_line[5][0].field == "url" and "/v1/chat/completions" in by_line[5][0].message
    assert by_line[6][0].field == "method"
    assert "expected a JSON object" in by_line[7][0].message
    assert "neither" in by_line[8][0].message
    assert "exactly one of prompt or messages" in by_line[9][0].message
    # pydantic messages come through llmops.errormap.field_message, the one mapping every file format uses
    assert by_line[10][0].field == "extra"
    assert by_line[10][0].message == "unknown key (allowed: body, custom_id, method, url)"
    assert "differs from line 1" in by_line[11][0].message
    rendered = info.value.render()
    assert f"{path}:4: custom_id: 'a' already used on line 1" in rendered
    assert "nothing was submitted" in rendered


def test_provider_limits(tmp_path: Path, bt) -> None:
    path = bt.write_lines(tmp_path / "in.jsonl", [bt.chat_line(f"r{i}", "x" * 50) for i in range(4)])
    tiny = BatchLimits(max_requests=3, max_bytes=10_000)
    assert len(parse_input(path, backend="openai", limits=tiny).requests) == 4  # split later
    with pytest.raises(BatchInputProblems, match="4 requests, over the provider's limit of 3"):
        parse_input(path, backend="openai", limits=tiny, split=False)
    with pytest.raises(
        BatchInputProblems, match=r"in.jsonl:1: the request is \d+ bytes, over the provider's limit"
    ):
        parse_input(path, backend="openai", limits=BatchLimits(max_bytes=100))


def test_plain_lines_take_sampling_defaults_and_line_fields_win(tmp_path: Path, bt) -> None:
    path = bt.write_lines(
        tmp_path / "in.jsonl",
        [
            {"prompt": "hi"},
            {
                "custom_id": "mine",
                "messages": [{"role": "user", "content": "yo"}],
                "temperature": 0.9,
                "system": "be brief",
            },
        ],
    )
    parsed = parse_input(
        path,
        backend="local",
        limits=LIMITS,
        model="smollm2",
        sampling={"temperature": 0.2, "top_p": 0.9, "max_tokens": 128},
        max_tokens=8,
    )
    first, second = parsed.requests
    assert first.custom_id == "request-1" and first.url == "/v1/chat/completions"
    assert first.body == {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 8,
    }
    assert second.custom_id == "mine" and second.body["temperature"] == 0.9
    assert second.body["messages"][0] == {"role": "system", "content": "be brief"}


def test_missing_model_and_anthropic_rules(tmp_path: Path, bt) -> None:
    path = bt.write_lines(
        tmp_path / "in.jsonl",
        [
            {
                "custom_id": "no model",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"messages": [{"role": "user", "content": "x"}]},
            },
            bt.chat_line("no-max", "x", model="claude-haiku-4-5"),
            bt.chat_line("hot", "x", model="claude-haiku-4-5", max_tokens=5, temperature=1.5),
            {**bt.chat_line("emb", "x"), "url": "/v1/embeddings"},
        ],
    )
    with pytest.raises(BatchInputProblems) as info:
        parse_input(path, backend="anthropic", limits=LIMITS)
    text = info.value.render()
    assert ":1: body.model: missing; add it to the line or pass --model" in text
    assert ":1: custom_id: 'no model' is not a valid Anthropic custom_id" in text
    assert ":2: body.max_tokens is required by Anthropic" in text
    assert ":3: body.temperature 1.5 is over Anthropic's maximum of 1" in text
    assert ":4: url: '/v1/embeddings' is not a batch endpoint for anthropic" in text


def test_cli_exit_2_and_nothing_submitted(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    path = bt.write_lines(tmp_path / "in.jsonl", [bt.chat_line("a", "x"), "{oops", bt.chat_line("a", "y")])
    result = CliRunner().invoke(
        app, ["batch", "submit", str(path), "--base-url", server.url + "/v1", "--wait"]
    )
    assert result.exit_code == 2, result.output
    assert "in.jsonl:2: not valid JSON" in result.stderr
    assert "in.jsonl:3: custom_id: 'a' already used on line 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert server.hits == []
    listed = CliRunner().invoke(app, ["batch", "list", "--json"])
    assert json.loads(listed.stdout) == []


def test_dry_run_says_where_values_came_from(tmp_path: Path, bt) -> None:
    path = bt.write_lines(tmp_path / "in.jsonl", [{"prompt": "hello there"}])
    (tmp_path / "llmops.yaml").write_text("batch:\n  provider: local\n  concurrency: 3\n")
    result = CliRunner().invoke(
        app,
        [
            "--config",
            str(tmp_path / "llmops.yaml"),
            "batch",
            "submit",
            str(path),
            "--dry-run",
            "--json",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "batch submit" and doc["backend"] == "local"
    assert doc["settings"]["concurrency"] == {"value": 3, "origin": "workspace"}
    assert doc["settings"]["base_url"] == {"value": "http://127.0.0.1:9/v1", "origin": "flag"}
    assert doc["settings"]["model"]["value"] == "smollm2"
    assert doc["estimate"]["requests"] == 1 and doc["estimate"]["usd"] == 0.0
    assert json.loads(CliRunner().invoke(app, ["batch", "list", "--json"]).stdout) == []
