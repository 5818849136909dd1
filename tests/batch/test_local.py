"""The local runner against OpenAI-compatible servers on loopback: retries, Retry-After, kills, resume."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_429_retry_after_and_random_500s_all_succeed(tmp_path: Path, bt, chat_server) -> None:
    rng = bt.seeded(7)
    plan: dict[str, list[tuple[int, dict]]] = {}
    for i in range(30):
        if i % 6 == 0:
            plan[f"p{i}"] = [(429, {"Retry-After": "1"})]
        elif rng.random() < 0.4:
            plan[f"p{i}"] = [(500, {})] * rng.randint(1, 2)
        if i == 9:
            plan[f"p{i}"] = [(503, {"retry-after-ms": "600"}), (500, {})]

    def fault(marker: str, attempt: int):
        steps = plan.get(marker, [])
        return steps[attempt] if attempt < len(steps) else None

    server = chat_server(fault=fault)
    path = bt.prompt_file(tmp_path, 30)
    result = invoke(
        "batch",
        "submit",
        str(path),
        "--base-url",
        server.url + "/v1",
        "--concurrency",
        "4",
        "--backoff",
        "0.05",
        "--wait",
        "--json",
        "-o",
        str(tmp_path / "out.jsonl"),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["state"] == "completed" and doc["counts"] == {"total": 30, "succeeded": 30, "failed": 0}
    lines = bt.read_results((tmp_path / "out.jsonl").read_text())
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(30)]
    assert all(ln["response"]["status_code"] == 200 and ln["error"] is None for ln in lines)
    assert lines[3]["response"]["body"]["choices"][0]["message"]["content"] == "echo: p3"
    assert sorted(server.successes()) == sorted(f"p{i}" for i in range(30))  # each exactly once
    statuses = [s for _, _, s in server.hits]
    assert statuses.count(429) == 5 and statuses.count(500) >= 3 and statuses.count(503) == 1
    for marker, _steps in plan.items():
        hits = [(t, s) for t, m, s in server.hits if m == marker]
        for (t0, s0), (t1, _) in itertools.pairwise(hits):
            if s0 == 429:
                assert t1 - t0 >= 1.0, f"{marker}: retried after {t1 - t0:.3f}s, Retry-After said 1s"
            if s0 == 503:
                assert t1 - t0 >= 0.6, f"{marker}: retried after {t1 - t0:.3f}s, retry-after-ms said 600"


def test_failures_after_retries_and_timeouts_are_reported_per_line(tmp_path: Path, bt, chat_server) -> None:
    def fault(marker: str, attempt: int):
        if marker == "p1":
            return 500, {}
        if marker == "p2":
            return 400, {}
        if marker == "p3":
            time.sleep(1.0)
        return None

    server = chat_server(fault=fault)
    path = bt.prompt_file(tmp_path, 5)
    result = invoke(
        "batch",
        "submit",
        str(path),
        "--base-url",
        server.url + "/v1",
        "--max-retries",
        "2",
        "--backoff",
        "0.01",
        "--timeout",
        "0.3",
        "--wait",
    )
    assert result.exit_code == 1
    assert "3 of 5 requests failed" in result.stderr
    job_id = json.loads(invoke("batch", "list", "--json").stdout)[0]["id"]
    lines = {ln["custom_id"]: ln for ln in bt.read_results(invoke("batch", "results", job_id).stdout)}
    assert lines["r0"]["response"]["status_code"] == 200
    assert lines["r1"]["response"]["status_code"] == 500
    assert len([1 for _, m, _ in server.hits if m == "p1"]) == 3  # 1 try + 2 retries
    assert lines["r2"]["response"]["status_code"] == 400
    assert len([1 for _, m, _ in server.hits if m == "p2"]) == 1  # a 400 is not retried
    assert lines["r3"]["response"] is None and lines["r3"]["error"]["code"] == "request_failed"
    assert "no response within 0.3s" in lines["r3"]["error"]["message"]


def test_sigkill_then_resume_is_exactly_once(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server(delay=0.03)
    n = 200
    path = bt.prompt_file(tmp_path, n)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    errlog = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(
        bt.llmops_cmd(
            "batch", "submit", str(path), "--base-url", server.url + "/v1", "--concurrency", "4", "--wait"
        ),
        stdout=subprocess.DEVNULL,
        stderr=errlog,
        env=env,
    )
    db = Path(os.environ["LLMOPS_DATA_DIR"]) / "batch" / "jobs.sqlite"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and done < 60:
        time.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    done = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    errlog.close()
    assert 60 <= done < n, f"killed too late or never started ({done} done)"
    stderr = (tmp_path / "stderr.txt").read_text()
    listed = json.loads(invoke("batch", "list", "--json").stdout)
    job_id = listed[0]["id"]
    assert f"batch job {job_id} created" in stderr  # the ID was on stderr before the kill
    assert listed[0]["state"] == "interrupted"
    assert {"id", "backend", "input", "state", "counts"} <= listed[0].keys()
    assert listed[0]["input"] == str(path.resolve()) and listed[0]["backend"] == "local"

    with sqlite3.connect(db) as con:
        journaled = {r[0] for r in con.execute("SELECT custom_id FROM results WHERE ok = 1")}
    hits_before = len(server.hits)
    time.sleep(0.2)  # requests in flight at the kill may still land on the server: they were never journaled
    settled = len(server.hits)

    resumed = bt.run_cli("batch", "resume", job_id, "--wait", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["counts"] == {"total": n, "succeeded": n, "failed": 0}
    after = [f"r{m[1:]}" for _, m, _ in server.hits[settled:]]
    assert not set(after) & journaled, "a request that had already succeeded was sent again"
    assert len(after) == len(set(after)) == n - len(journaled)
    assert hits_before <= settled

    out = bt.run_cli("batch", "results", job_id)
    lines = bt.read_results(out.stdout)
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(n)]
    assert all(ln["response"]["status_code"] == 200 for ln in lines)


def test_resume_sends_failed_requests_again(tmp_path: Path, bt, chat_server) -> None:
    down = {"on": True}
    server = chat_server(fault=lambda marker, attempt: (503, {}) if down["on"] and marker != "p0" else None)
    path = bt.prompt_file(tmp_path, 6)
    first = invoke(
        "batch",
        "submit",
        str(path),
        "--base-url",
        server.url + "/v1",
        "--max-retries",
        "1",
        "--backoff",
        "0.01",
        "--wait",
        "--json",
    )
    assert first.exit_code == 1
    doc = json.loads(first.stdout)
    assert doc["state"] == "completed" and doc["counts"] == {"total": 6, "succeeded": 1, "failed": 5}
    down["on"] = False
    hits_before = len(server.hits)
    again = invoke("batch", "resume", doc["id"], "--wait", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"] == {"total": 6, "succeeded": 6, "failed": 0}
    assert sorted(m for _, m, _ in server.hits[hits_before:]) == [f"p{i}" for i in range(1, 6)]
    lines = bt.read_results(invoke("batch", "results", doc["id"]).stdout)
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(6)]


def test_same_file_after_interruption_picks_up_the_job(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    path = bt.prompt_file(tmp_path, 8)
    from llmops.batch.store import JobStore

    first = invoke("batch", "submit", str(path), "--base-url", server.url + "/v1", "--wait", "--json")
    job_id = json.loads(first.stdout)["id"]
    # as if the run had died after 3 results: the rest leave the journal and the job is interrupted
    store = JobStore()
    job = store.get(job_id)
    with sqlite3.connect(store.path) as con:
        con.execute("DELETE FROM results WHERE job_id = ? AND seq >= 3", (job_id,))
    job.state = "interrupted"
    store.save(job)
    (store.job_dir(job_id) / "results.jsonl").unlink()
    sent_before = len(server.hits)
    again = invoke("batch", "submit", str(path), "--base-url", server.url + "/v1", "--wait", "--json")
    assert again.exit_code == 0, again.output
    assert f"batch job {job_id} resuming" in again.stderr
    assert json.loads(again.stdout)["id"] == job_id
    assert sorted(m for _, m, _ in server.hits[sent_before:]) == [f"p{i}" for i in range(3, 8)]


def test_background_run_status_and_cancel(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server(delay=0.2)
    path = bt.prompt_file(tmp_path, 40)
    sub = bt.run_cli(
        "batch", "submit", str(path), "--base-url", server.url + "/v1", "--concurrency", "1", "--json"
    )
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    job_id = doc["id"]
    assert doc["state"] == "running" and f"batch job {job_id} created" in sub.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not server.hits:
        time.sleep(0.05)
    assert server.hits, "the background worker never sent anything"
    cancelled = bt.run_cli("batch", "cancel", job_id, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] in ("cancelling", "cancelled")
    while time.monotonic() < deadline:
        status = json.loads(bt.run_cli("batch", "status", job_id, "--json").stdout)
        if status["state"] == "cancelled":
            break
        time.sleep(0.2)
    assert status["state"] == "cancelled"
    lines = bt.read_results(bt.run_cli("batch", "results", job_id).stdout)
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(40)]
    cancelled_lines = [ln for ln in lines if ln["error"] and ln["error"]["code"] == "batch_cancelled"]
    assert 0 < len(cancelled_lines) < 40
    assert len(server.hits) + len(cancelled_lines) <= 41


def test_provider_key_from_env_never_stored(tmp_path: Path, bt, chat_server) -> None:
    profiles = tmp_path / "profiles" / "providers"
    profiles.mkdir(parents=True)
    server = chat_server()
    (profiles / "mine.yaml").write_text(
        f"name: mine\napi: openai-compatible\nbase_url: {server.url}/v1\napi_key_env: MINE_API_KEY\n"
        "rpm: 600\nmodels:\n  - {name: tiny, input_per_1m: 1.0, output_per_1m: 2.0}\n"
        "batch: {discount: 0.25}\n"
    )
    path = bt.prompt_file(tmp_path, 3)
    base = [
        "--profiles-dir",
        str(tmp_path / "profiles"),
        "batch",
        "submit",
        str(path),
        "--provider",
        "mine",
        "--model",
        "tiny",
        "--wait",
        "--json",
    ]
    missing = invoke(*base)
    assert missing.exit_code == 3
    assert "MINE_API_KEY" in missing.stderr
    assert json.loads(invoke("batch", "list", "--json").stdout) == []
    secret = "sk-local-SECRET-abcdef0123456789"
    result = CliRunner().invoke(app, base, env={"MINE_API_KEY": secret})
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["actual_usd"] == round((3 * 5 * 1.0 + 3 * 3 * 2.0) / 1e6 * 0.75, 6)
    assert doc["estimate_usd"] > 0
    data = Path(os.environ["LLMOPS_DATA_DIR"])
    for file in data.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"the key leaked into {file}"
    assert secret not in result.output


def test_results_never_overwrite(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    path = bt.prompt_file(tmp_path, 2)
    taken = tmp_path / "taken.jsonl"
    taken.write_text("mine\n")
    refused = invoke(
        "batch", "submit", str(path), "--base-url", server.url + "/v1", "-o", str(taken), "--wait"
    )
    assert refused.exit_code == 2 and "already exists" in refused.stderr and server.hits == []
    done = invoke("batch", "submit", str(path), "--base-url", server.url + "/v1", "--wait", "--json")
    job_id = json.loads(done.stdout)["id"]
    again = invoke("batch", "results", job_id, "-o", str(taken))
    assert again.exit_code == 2 and taken.read_text() == "mine\n"
    fresh = tmp_path / "fresh.jsonl"
    assert invoke("batch", "results", job_id[:12], "-o", str(fresh)).exit_code == 0
    assert len(bt.read_results(fresh.read_text())) == 2
    assert invoke("batch", "status", "batch_nope").exit_code == 2
