"""The openai and anthropic backends, through the official SDKs, against fakes of their HTTP APIs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app

SMALL = """name: {name}
api: {api}
base_url: {url}
api_key_env: {env}
models:
  - {{name: {model}, input_per_1m: 1.0, output_per_1m: 4.0}}
batch: {{discount: 0.5, max_requests: {max_requests}}}
"""


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def profiles(tmp_path: Path, api: str, url: str, max_requests: int) -> Path:
    root = tmp_path / "profiles"
    (root / "providers").mkdir(parents=True, exist_ok=True)
    model = "gpt-4o-mini" if api == "openai" else "claude-haiku-4-5"
    env = "OPENAI_API_KEY" if api == "openai" else "ANTHROPIC_API_KEY"
    (root / "providers" / f"{api}-small.yaml").write_text(
        SMALL.format(name=f"{api}-small", api=api, url=url, env=env, model=model, max_requests=max_requests)
    )
    return root


def lines_of(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def assert_no_key_anywhere(key: str, *texts: str) -> None:
    for text in texts:
        assert key not in text
    for file in Path(os.environ["LLMOPS_DATA_DIR"]).rglob("*"):
        if file.is_file():
            assert key.encode() not in file.read_bytes(), f"the key leaked into {file}"


# --- OpenAI ------------------------------------------------------------------------------------


def openai_input(tmp_path: Path, bt, n: int, fail: tuple[int, ...] = ()) -> Path:
    return bt.write_lines(
        tmp_path / "in.jsonl",
        [bt.chat_line(f"req-{i}", "FAIL" if i in fail else f"hello {i}", max_tokens=16) for i in range(n)],
    )


def test_openai_split_partial_failure_merged_in_input_order(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai()
    root = profiles(tmp_path, "openai", fake.url + "/v1", max_requests=3)
    path = openai_input(tmp_path, bt, 7, fail=(4,))
    out = tmp_path / "results.jsonl"
    result = invoke(
        "--profiles-dir",
        str(root),
        "batch",
        "submit",
        str(path),
        "-p",
        "openai-small",
        "--model",
        "gpt-4o-mini",
        "--wait",
        "--poll-interval",
        "0.01",
        "--json",
        "-o",
        str(out),
        env={"OPENAI_API_KEY": bt.OPENAI_KEY},
    )
    assert result.exit_code == 1, result.output  # one request failed
    assert "1 of 7 requests failed" in result.stderr
    assert "7 requests in 3 batch(es)" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["state"] == "completed" and doc["counts"] == {"total": 7, "succeeded": 6, "failed": 1}
    assert len(doc["remote_ids"]) == 3 and fake.created == 3
    assert doc["actual_usd"] == pytest.approx((6 * 10 * 1.0 + 6 * 4 * 4.0) / 1e6 * 0.5)
    assert doc["estimate_usd"] > 0
    metas = sorted(b["metadata"]["llmops_part"] for b in fake.batches.values())
    assert metas == ["1/3", "2/3", "3/3"]
    assert all(b["metadata"]["llmops_job"] == doc["id"] for b in fake.batches.values())
    uploaded = [f for f in fake.files.values() if f["purpose"] == "batch"]
    assert sorted(len(fake.contents[f["id"]].splitlines()) for f in uploaded) == [1, 3, 3]
    results = lines_of(out.read_text())
    assert [r["custom_id"] for r in results] == [f"req-{i}" for i in range(7)]
    assert results[4]["response"]["status_code"] == 400
    assert results[4]["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert results[0]["response"]["body"]["choices"][0]["message"]["content"] == "ok req-0"
    status = invoke("batch", "status", doc["id"], "--json")
    assert json.loads(status.stdout)["state"] == "completed"
    assert_no_key_anywhere(bt.OPENAI_KEY, result.output, out.read_text())


def test_openai_expired_batch(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai(outcome="expired", done_before_expiry=1)
    path = openai_input(tmp_path, bt, 4)
    result = invoke(
        "batch",
        "submit",
        str(path),
        "-p",
        "openai",
        "--base-url",
        fake.url + "/v1",
        "--wait",
        "--poll-interval",
        "0.01",
        "--json",
        env={"OPENAI_API_KEY": bt.OPENAI_KEY},
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["state"] == "expired" and doc["counts"] == {"total": 4, "succeeded": 1, "failed": 3}
    results = lines_of(invoke("batch", "results", doc["id"]).stdout)
    assert [r["custom_id"] for r in results] == [f"req-{i}" for i in range(4)]
    assert results[0]["response"]["status_code"] == 200
    assert all(r["response"] is None and r["error"]["code"] == "batch_expired" for r in results[1:])


def test_openai_cancelled_batch(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai(done_before_expiry=2)
    path = openai_input(tmp_path, bt, 5)
    env = {"OPENAI_API_KEY": bt.OPENAI_KEY}
    sub = invoke(
        "batch", "submit", str(path), "-p", "openai", "--base-url", fake.url + "/v1", "--json", env=env
    )
    assert sub.exit_code == 0, sub.output
    doc = json.loads(sub.stdout)
    assert doc["state"] == "running" and len(doc["remote_ids"]) == 1
    assert f"batch job {doc['id']} created" in sub.stderr
    listed = json.loads(invoke("batch", "list", "--json").stdout)
    assert (
        listed[0]["id"] == doc["id"] and listed[0]["backend"] == "openai" and listed[0]["state"] == "running"
    )
    cancelled = invoke("batch", "cancel", doc["id"], "--json", env=env)
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.stdout)["state"] in ("cancelling", "cancelled")
    status = json.loads(invoke("batch", "status", doc["id"], "--json", env=env).stdout)
    assert status["state"] == "cancelled"
    results = lines_of(invoke("batch", "results", doc["id"], env=env).stdout)
    assert [r["custom_id"] for r in results] == [f"req-{i}" for i in range(5)]
    assert [r["error"]["code"] if r["error"] else 200 for r in results] == [200, 200] + [
        "batch_cancelled"
    ] * 3
    assert invoke("batch", "cancel", doc["id"], env=env).exit_code == 2  # already cancelled


def test_openai_failed_validation(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai(outcome="failed")
    path = openai_input(tmp_path, bt, 2)
    result = invoke(
        "batch",
        "submit",
        str(path),
        "-p",
        "openai",
        "--base-url",
        fake.url + "/v1",
        "--wait",
        "--poll-interval",
        "0.01",
        "--json",
        env={"OPENAI_API_KEY": bt.OPENAI_KEY},
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["state"] == "failed"
    results = lines_of(invoke("batch", "results", json.loads(result.stdout)["id"]).stdout)
    assert [r["error"]["code"] for r in results] == ["batch_failed", "batch_failed"]
    assert "Model 'nope' is not available" in results[0]["error"]["message"]


def test_openai_keys(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai()
    path = openai_input(tmp_path, bt, 1)
    base = ["batch", "submit", str(path), "-p", "openai", "--base-url", fake.url + "/v1", "--wait"]
    missing = invoke(*base)
    assert missing.exit_code == 3 and "OPENAI_API_KEY" in missing.stderr
    assert fake.seen_headers == [] and json.loads(invoke("batch", "list", "--json").stdout) == []
    wrong = invoke(*base, env={"OPENAI_API_KEY": "sk-wrong-key-XYZ"})
    assert wrong.exit_code == 1 and "OpenAI refused the API key" in wrong.stderr
    job = json.loads(invoke("batch", "list", "--json").stdout)[0]
    assert job["state"] == "interrupted" and "refused the API key" in job["error"]
    assert f"llmops batch resume {job['id']}" in wrong.stderr
    fixed = invoke(
        "batch",
        "resume",
        job["id"],
        "--wait",
        "--poll-interval",
        "0.01",
        "--json",
        env={"OPENAI_API_KEY": bt.OPENAI_KEY},
    )
    assert fixed.exit_code == 0, fixed.output
    assert (
        json.loads(fixed.stdout)["counts"] == {"total": 1, "succeeded": 1, "failed": 0} and fake.created == 1
    )
    assert_no_key_anywhere("sk-wrong-key-XYZ", wrong.output)


def test_openai_subprocess_once(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai()
    path = openai_input(tmp_path, bt, 3)
    proc = bt.run_cli(
        "batch",
        "submit",
        str(path),
        "-p",
        "openai",
        "--base-url",
        fake.url + "/v1",
        "--wait",
        "--poll-interval",
        "0.01",
        "--json",
        env={"OPENAI_API_KEY": bt.OPENAI_KEY},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["succeeded"] == 3
    assert_no_key_anywhere(bt.OPENAI_KEY, proc.stdout, proc.stderr)


# --- Anthropic ---------------------------------------------------------------------------------


def anthropic_input(tmp_path: Path, bt, n: int, fail: tuple[int, ...] = ()) -> Path:
    docs = []
    for i in range(n):
        docs.append(
            {
                "custom_id": f"req-{i}",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "FAIL" if i in fail else f"hi {i}"},
                ],
            }
        )
    return bt.write_lines(tmp_path / "in.jsonl", docs)


def test_anthropic_split_partial_failure(tmp_path: Path, bt, fake_anthropic) -> None:
    fake = fake_anthropic()
    root = profiles(tmp_path, "anthropic", fake.url, max_requests=2)
    path = anthropic_input(tmp_path, bt, 5, fail=(1,))
    result = invoke(
        "--profiles-dir",
        str(root),
        "batch",
        "submit",
        str(path),
        "-p",
        "anthropic-small",
        "--model",
        "claude-haiku-4-5",
        "--max-tokens",
        "32",
        "--wait",
        "--poll-interval",
        "0.01",
        "--json",
        env={"ANTHROPIC_API_KEY": bt.ANTHROPIC_KEY},
    )
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["state"] == "completed" and doc["counts"] == {"total": 5, "succeeded": 4, "failed": 1}
    assert len(fake.batches) == 3
    sent = [r for reqs in fake.requests.values() for r in reqs]
    assert sent[0]["params"] == {
        "model": "claude-haiku-4-5",
        "max_tokens": 32,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi 0"}],
    }
    assert all(h.get("anthropic-version") for h in fake.seen_headers)
    results = lines_of(invoke("batch", "results", doc["id"]).stdout)
    assert [r["custom_id"] for r in results] == [f"req-{i}" for i in range(5)]
    assert results[1]["response"]["status_code"] == 400
    assert results[0]["response"]["body"]["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 6,
        "total_tokens": 18,
    }
    assert doc["actual_usd"] == pytest.approx((4 * 12 * 1.0 + 4 * 6 * 4.0) / 1e6 * 0.5)
    assert_no_key_anywhere(bt.ANTHROPIC_KEY, result.output)


def test_anthropic_expired_and_cancelled(tmp_path: Path, bt, fake_anthropic) -> None:
    env = {"ANTHROPIC_API_KEY": bt.ANTHROPIC_KEY}
    expired = fake_anthropic(outcome="expired")
    path = anthropic_input(tmp_path, bt, 3)
    common = ["-p", "anthropic", "--model", "claude-haiku-4-5", "--max-tokens", "8", "--json"]
    res = invoke(
        "batch",
        "submit",
        str(path),
        "--base-url",
        expired.url,
        "--wait",
        "--poll-interval",
        "0.01",
        *common,
        env=env,
    )
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["counts"] == {"total": 3, "succeeded": 1, "failed": 2}
    codes = [
        r["error"]["code"] if r["error"] else "ok"
        for r in lines_of(invoke("batch", "results", doc["id"]).stdout)
    ]
    assert codes == ["ok", "batch_expired", "batch_expired"]

    live = fake_anthropic()
    sub = invoke("batch", "submit", str(path), "--base-url", live.url, "--new", *common, env=env)
    job_id = json.loads(sub.stdout)["id"]
    assert json.loads(sub.stdout)["state"] == "running"
    cancel = invoke("batch", "cancel", job_id, "--json", env=env)
    assert cancel.exit_code == 0, cancel.output
    assert json.loads(cancel.stdout)["state"] == "cancelled"
    codes = [
        r["error"]["code"] if r["error"] else "ok"
        for r in lines_of(invoke("batch", "results", job_id).stdout)
    ]
    assert codes == ["ok", "batch_cancelled", "batch_cancelled"]


def test_anthropic_missing_key_and_bad_lines(tmp_path: Path, bt, fake_anthropic) -> None:
    fake = fake_anthropic()
    path = anthropic_input(tmp_path, bt, 1)
    missing = invoke(
        "batch",
        "submit",
        str(path),
        "-p",
        "anthropic",
        "--base-url",
        fake.url,
        "--model",
        "claude-haiku-4-5",
        "--max-tokens",
        "8",
    )
    assert missing.exit_code == 3 and "ANTHROPIC_API_KEY" in missing.stderr
    no_max = invoke(
        "batch",
        "submit",
        str(path),
        "-p",
        "anthropic",
        "--base-url",
        fake.url,
        "--model",
        "claude-haiku-4-5",
        env={"ANTHROPIC_API_KEY": bt.ANTHROPIC_KEY},
    )
    assert no_max.exit_code == 2 and "max_tokens is required by Anthropic" in no_max.stderr
    assert fake.seen_headers == []


# --- answers in an unexpected shape: the job is never stuck, status and cancel always work --------


def submit_meeting_odd_answer(path: Path, args: list[str], env: dict[str, str], doing: str) -> str:
    """submit --wait against a provider answering oddly: one line naming what was being done, exit 1,
    never a traceback; returns the job's ID."""
    res = invoke("batch", "submit", str(path), *args, "--wait", "--poll-interval", "0.01", env=env)
    assert res.exit_code == 1, res.output
    assert f"answered in an unexpected shape while trying to {doing}" in res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    job_id = json.loads(invoke("batch", "list", "--json").stdout)[0]["id"]
    assert f"llmops batch resume {job_id}" in res.stderr or f"llmops batch cancel {job_id}" in res.stderr
    return job_id


def test_anthropic_odd_create_answer_leaves_an_interrupted_job(tmp_path: Path, bt, fake_anthropic) -> None:
    env = {"ANTHROPIC_API_KEY": bt.ANTHROPIC_KEY}
    fake = fake_anthropic()
    fake.odd["create"] = {"type": "message_batch"}  # no id, no processing_status
    path = anthropic_input(tmp_path, bt, 3)
    common = ["-p", "anthropic", "--base-url", fake.url, "--model", "claude-haiku-4-5", "--max-tokens", "8"]
    job_id = submit_meeting_odd_answer(path, common, env, "create the message batch")
    status = invoke("batch", "status", job_id, "--json", env=env)
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["state"] == "interrupted"  # not "running"
    cancel = invoke("batch", "cancel", job_id, "--json", env=env)
    assert cancel.exit_code == 0, cancel.output
    assert json.loads(cancel.stdout)["state"] == "cancelled"
    codes = [r["error"]["code"] for r in lines_of(invoke("batch", "results", job_id).stdout)]
    assert codes == ["batch_cancelled"] * 3


@pytest.mark.parametrize("odd", [{"id": 7, "status": None}, [], "ok", None])
def test_openai_odd_answers_can_always_be_inspected_and_cancelled(
    tmp_path: Path, bt, fake_openai, odd
) -> None:
    env = {"OPENAI_API_KEY": bt.OPENAI_KEY}
    fake = fake_openai(done_before_expiry=1)
    path = openai_input(tmp_path, bt, 3)
    fake.odd["retrieve"] = odd
    job_id = submit_meeting_odd_answer(
        path, ["-p", "openai", "--base-url", fake.url + "/v1"], env, "retrieve"
    )

    status = invoke("batch", "status", job_id, "--json", env=env)
    assert status.exit_code == 1 and "unexpected shape" in status.stderr  # said, after the record
    doc = json.loads(status.stdout)
    assert doc["state"] == "running" and "unexpected shape" in doc["error"]
    assert doc["parts"][0]["remote_id"] in fake.batches

    fake.odd["cancel"] = odd
    cancel = invoke("batch", "cancel", job_id, "--json", env=env)
    assert cancel.exit_code == 0, cancel.output
    assert json.loads(cancel.stdout)["state"] == "cancelling"
    assert next(iter(fake.batches.values()))["cancelling_at"] is not None  # the provider got the cancel

    fake.odd.clear()  # the provider answers properly again
    final = invoke("batch", "status", job_id, "--json", env=env)
    assert final.exit_code == 0, final.output
    assert json.loads(final.stdout)["state"] == "cancelled"
    codes = [
        r["error"]["code"] if r["error"] else 200 for r in lines_of(invoke("batch", "results", job_id).stdout)
    ]
    assert codes == [200, "batch_cancelled", "batch_cancelled"]
