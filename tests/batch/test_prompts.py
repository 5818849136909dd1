"""The one JSONL prompt format: a batch input line is a valid `bench --dataset jsonl:` line, both read by
llmops.prompts; bad bytes are exit 2 naming the file and the line, for both commands."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmops.batch.parse import parse_input
from llmops.bench.workload import jsonl_prompts
from llmops.cli import app
from llmops.profiles.schema import BatchLimits
from llmops.prompts import PromptLine, RequestLine, read_prompt_file

LIMITS = BatchLimits()


def test_a_batch_input_file_is_a_bench_dataset(tmp_path: Path, bt) -> None:
    path = bt.write_lines(
        tmp_path / "mixed.jsonl",
        [
            bt.chat_line("q1", "What is 2+2?", max_tokens=16),
            {"prompt": "Say hi", "temperature": 0.2, "max_tokens": 8},
            {"messages": [{"role": "user", "content": "Bye"}], "system": "Be brief.", "custom_id": "q3"},
            {"prompt": "Count to five", "output_len": 12},
        ],
    )
    parsed = parse_input(path, backend="local", limits=LIMITS, model="m")
    assert [r.custom_id for r in parsed.requests] == ["q1", "request-2", "q3", "request-4"]
    assert parsed.requests[1].body["max_tokens"] == 8 and parsed.requests[1].body["temperature"] == 0.2
    assert parsed.requests[2].body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert parsed.requests[3].body["max_tokens"] == 12  # output_len is max_tokens
    prompts = jsonl_prompts(path, None, 64)
    assert [p.text for p in prompts] == ["What is 2+2?", "Say hi", "Be brief.\nBye", "Count to five"]
    assert [p.output_len for p in prompts] == [16, 8, 64, 12]
    assert prompts[2].messages == parsed.requests[2].body["messages"]
    assert prompts[0].messages == [{"role": "user", "content": "What is 2+2?"}]


def test_one_parser_one_message_per_bad_line(tmp_path: Path, bt) -> None:
    path = bt.write_lines(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "ok"},
            {"promt": "typo"},
            {"prompt": "x", "temprature": 0.1},
            {"prompt": "x", "messages": []},
            {"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}},
        ],
    )
    read = read_prompt_file(path)
    assert [type(e.line) for e in read.entries] == [PromptLine]
    rendered = [p.render() for p in read.problems]
    assert (
        rendered[0]
        == f"{path}:2: neither a batch request line (custom_id, method, url, body) nor a plain line (prompt or messages)"
    )
    assert rendered[1] == f"{path}:3: temprature: unknown key; did you mean 'temperature'?"
    assert rendered[2] == f"{path}:4: give exactly one of prompt or messages"
    assert rendered[3] == f"{path}:5: method: Input should be 'POST' (got 'GET')"
    assert RequestLine.model_fields.keys() == {"custom_id", "method", "url", "body"}


def test_binary_file_is_exit_2_naming_file_and_line(tmp_path: Path, bt, chat_server) -> None:
    blob = tmp_path / "model.bin"
    blob.write_bytes(b'{"prompt": "fine"}\n' + bytes(range(128, 256)) * 4 + b"\n\x00\x01\x02\n")
    bench = CliRunner().invoke(
        app, ["bench", "--target", "http://127.0.0.1:9", "--model", "m", "--dataset", f"jsonl:{blob}"]
    )
    assert bench.exit_code == 2, bench.output
    assert f"{blob}:2: not UTF-8 text" in bench.stderr and f"{blob}:3: not valid JSON" in bench.stderr
    assert "internal error" not in bench.stderr
    server = chat_server()
    batch = CliRunner().invoke(
        app, ["batch", "submit", str(blob), "--base-url", server.url + "/v1", "--wait"]
    )
    assert batch.exit_code == 2 and f"{blob}:2: not UTF-8 text" in batch.stderr and server.hits == []


def test_a_huge_binary_file_reports_the_first_problems_only(tmp_path: Path) -> None:
    blob = tmp_path / "noise.jsonl"
    blob.write_bytes(b"\xff\xfe\n" * 10_000)
    problems = read_prompt_file(blob).problems
    assert len(problems) == 51 and problems[-1].message == "stopped reading after 50 problems"


def test_settings_come_from_the_environment_with_their_origin(tmp_path: Path, bt) -> None:
    path = bt.write_lines(tmp_path / "in.jsonl", [{"prompt": "hello"}])
    env = {"LLMOPS_BATCH_CONCURRENCY": "5", "LLMOPS_BATCH_BASE_URL": "http://127.0.0.1:9/v1"}
    dry = CliRunner().invoke(app, ["batch", "submit", str(path), "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    settings = json.loads(dry.stdout)["settings"]
    assert settings["concurrency"] == {"value": 5, "origin": "env"}
    assert settings["base_url"] == {"value": "http://127.0.0.1:9/v1", "origin": "env"}
    assert settings["provider"] == {"value": "local", "origin": "default"}
    assert settings["endpoint_wait"] == {"value": 10.0, "origin": "default"}
    assert all(set(s) == {"value", "origin"} for s in settings.values())
    flag = CliRunner().invoke(
        app, ["batch", "submit", str(path), "--concurrency", "2", "--dry-run", "--json"], env=env
    )
    assert json.loads(flag.stdout)["settings"]["concurrency"] == {"value": 2, "origin": "flag"}
    bad = CliRunner().invoke(
        app, ["batch", "submit", str(path), "--dry-run"], env={**env, "LLMOPS_BATCH_ENDPOINT_WAIT": "-1"}
    )
    assert bad.exit_code == 2 and "LLMOPS_BATCH_ENDPOINT_WAIT" in bad.stderr
