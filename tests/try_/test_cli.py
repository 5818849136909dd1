"""`llmops try` through the CLI against a local streaming server: output, status line, JSON, exits."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmops.bench.fake_server import spawn
from llmops.cli import app
from llmops.tryout.stream import header_values

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["try", *args])


def test_streams_the_answer_to_stdout_and_the_status_line_to_stderr(fake_url: str) -> None:
    res = run("stub", "Say something", "--target", fake_url, "--max-tokens", "6")
    assert res.exit_code == 0, res.output
    assert res.stdout == "tok " * 6 + "\n"
    assert (
        "TTFT" in res.stderr
        and "tok/s" in res.stderr
        and "tokens in" in res.stderr
        and "/ out 6" in res.stderr
    )


def test_json_is_one_document_with_parameters_and_figures(fake_url: str) -> None:
    res = run(
        "stub",
        "Hi",
        "--target",
        fake_url,
        "--max-tokens",
        "5",
        "--temperature",
        "0.3",
        "--seed",
        "4",
        "--json",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    run0 = doc["runs"][0]
    assert run0["parameters"] == {"temperature": 0.3, "seed": 4, "max_tokens": 5}
    assert run0["request"]["temperature"] == 0.3 and run0["request"]["stream"] is True
    a = run0["answers"][0]
    assert a["text"] == "tok " * 5 and a["output_tokens"] == 5 and a["output_tokens_from"] == "usage"
    assert a["ttft_ms"] >= 15 and a["error"] is None
    assert doc["settings"]["temperature"] == {"value": 0.3, "origin": "flag"}


def test_provider_prices_give_a_cost_and_the_key_never_shows(
    fake_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    res = run("gpt-4o-mini", "Hi", "--target", fake_url, "--max-tokens", "4", "--json")
    assert res.exit_code == 0, res.output
    a = json.loads(res.stdout)["runs"][0]["answers"][0]
    expected = (a["input_tokens"] * 0.15 + 4 * 0.60) / 1e6
    assert a["cost_usd"] == pytest.approx(expected)
    assert "sk-secret" not in res.output
    res = run("gpt-4o-mini", "Hi", "--target", fake_url, "--max-tokens", "4")
    assert "$0.0000" in res.stderr and "sk-secret" not in res.output


def test_anthropic_messages_stream(fake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    res = run("claude-haiku-4-5", "Hi", "--target", fake_url, "--max-tokens", "3", "--stop", "END", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["dialect"] == "anthropic" and doc["runs"][0]["request"]["stop_sequences"] == ["END"]
    a = doc["runs"][0]["answers"][0]
    assert a["text"] == "tok tok tok " and a["finish_reason"] == "length" and a["output_tokens"] == 3


def test_repeats_report_diversity_and_seed_identity(fake_url: str) -> None:
    res = run(
        "stub",
        "Hi",
        "--target",
        fake_url,
        "--max-tokens",
        "3",
        "--n",
        "3",
        "--seed",
        "1",
        "--temperature",
        "0",
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.count("tok tok tok") == 3
    assert "3 answers: 1 distinct" in res.stderr
    assert "seed 1 at temperature 0: repeated answers identical (3 of 3)" in res.stderr
    assert "no system_fingerprint" in res.stderr


def test_compare_prints_a_side_by_side_table(fake_url: str) -> None:
    res = run(
        "stub", "Hi", "--target", fake_url, "--max-tokens", "2", "--compare", "top_p=0.5,1", "--repeat", "2"
    )
    assert res.exit_code == 0, res.output
    assert "top_p=0.5" in res.stdout and "top_p=1" in res.stdout and "distinct answers" in res.stdout
    assert "1 of 2" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--temperature", "-0.5"], "--temperature -0.5 is out of range"),
        (["--top-p", "1.5"], "--top-p 1.5 is out of range"),
        (["--top-p", "0"], "--top-p 0 is out of range"),
        (["--preset", "wild"], "unknown preset 'wild'"),
        (["--compare", "temperature=0,x"], "'x' is not a number"),
        (["--logprobs", "50"], "--logprobs 50 is out of range"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fake_url: str, args: list[str], message: str) -> None:
    res = run("stub", "Hi", "--target", fake_url, *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1 and res.stdout == ""


def test_unsupported_parameter_names_it_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    proc, base = spawn(20, 5)
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        res = run("gpt-4o-mini", "Hi", "--target", base, "--top-k", "40")
        assert res.exit_code == 2
        assert "--top-k: the OpenAI API does not support top_k; nothing was sent" in res.stderr
        import httpx

        assert httpx.get(base + "/stats").json()["requests"] == 0
    finally:
        proc.terminate()
        proc.wait(5)


def test_timeout_says_it_was_the_first_token() -> None:
    proc, base = spawn(20, 5, stall_after=0)  # accepts the request, never answers
    try:
        res = run("stub", "Hi", "--target", base, "--timeout", "0.5")
        assert res.exit_code == 1
        assert "no first token within 0.5s" in res.stderr
    finally:
        proc.terminate()
        proc.wait(5)


def test_timeout_mid_answer_says_it_was_still_streaming() -> None:
    proc, base = spawn(10, 100)  # a token every 100 ms
    try:
        res = run("stub", "Hi", "--target", base, "--max-tokens", "50", "--timeout", "0.6", "--json")
        assert res.exit_code == 1
        a = json.loads(res.stdout)["runs"][0]["answers"][0]
        assert a["error"] == "timeout" and "still streaming after 0.6s" in a["detail"]
        assert a["text"].startswith("tok tok")  # the partial answer is kept
    finally:
        proc.terminate()
        proc.wait(5)


def test_connection_refused_is_exit_1_with_a_hint() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run("stub", "Hi", "--target", f"http://127.0.0.1:{port}/v1")
    assert res.exit_code == 1
    assert "connect:" in res.stderr and "is the server running?" in res.stderr


def test_dry_run_json_shows_settings_with_origins_and_the_request(fake_url: str) -> None:
    res = run("smollm2", "Hi", "--preset", "exact", "--repetition-penalty", "1.2", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == "try" and doc["serve_first"] is True and doc["dialect"] == "llamacpp"
    assert doc["settings"]["top_k"] == {"value": 1, "origin": "flag"}
    assert doc["settings"]["max_tokens"] == {"value": 128, "origin": "profile"}
    req = doc["requests"][0]["request"]
    assert req["repeat_penalty"] == 1.2 and req["temperature"] == 0.0 and req["top_k"] == 1


def test_gateway_headers_are_read_from_the_response_head() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nX-LLMOps-Route: chat\r\n"
        b"x-llmops-deployment: d1\r\nx-llmops-cache: hit\r\n"
    )
    assert header_values(head) == {"route": "chat", "deployment": "d1", "cache": "hit"}


def test_prompt_from_stdin_and_the_model_asked_from_the_target(fake_url: str) -> None:
    res = runner.invoke(
        app, ["try", "-", "--target", fake_url, "--max-tokens", "2", "--json"], input="Hello\n"
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["model"] == "fake-model"  # GET /v1/models: the target's first model
    assert doc["messages"] == [{"role": "user", "content": "Hello\n"}]
