"""One owner per job: two submits of one file at once end with one complete job; Ctrl-C drains the
requests in flight, so a resume sends nothing twice; another process can always look and cancel."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli import app


def wait_until(check, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_submits_of_one_file_at_once_end_with_one_complete_job(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server(delay=0.02)
    n = 100
    path = bt.prompt_file(tmp_path, n)
    args = ("batch", "submit", str(path), "--base-url", server.url + "/v1", "--concurrency", "4", "--wait")
    first = bt.popen_cli(*args, "--json")
    second = bt.popen_cli(*args, "--json")
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert (first.returncode, second.returncode) == (0, 0), f"first:\n{err1}\nsecond:\n{err2}"
    doc1, doc2 = json.loads(out1), json.loads(out2)
    assert doc1["id"] == doc2["id"]
    assert doc1["counts"] == doc2["counts"] == {"total": n, "succeeded": n, "failed": 0}
    assert doc1["state"] == doc2["state"] == "completed"
    waited = err1 if "is being run by another process" in err1 else err2
    assert f"batch job {doc1['id']} is being run by another process (pid " in waited
    assert "waiting for it to end" in waited
    listed = json.loads(CliRunner().invoke(app, ["batch", "list", "--json"]).stdout)
    assert [(j["id"], j["state"]) for j in listed] == [(doc1["id"], "completed")]
    assert sorted(server.successes()) == sorted(f"p{i}" for i in range(n))  # each sent exactly once


def test_status_and_cancel_while_another_process_runs_the_job(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server(delay=0.2)
    path = bt.prompt_file(tmp_path, 40)
    proc = bt.popen_cli(
        "batch", "submit", str(path), "--base-url", server.url + "/v1", "--concurrency", "2", "--wait"
    )
    wait_until(lambda: len(server.hits) >= 4, what="the first results")
    job_id = json.loads(bt.run_cli("batch", "list", "--json").stdout)[0]["id"]
    status = bt.run_cli("batch", "status", job_id, "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["state"] == "running" and doc["owner_pid"] == proc.pid and doc["counts"]["succeeded"] >= 2
    cancelled = bt.run_cli("batch", "cancel", job_id, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "cancelling"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "cancelled" in err
    final = json.loads(bt.run_cli("batch", "status", job_id, "--json").stdout)
    assert final["state"] == "cancelled" and final["owner_pid"] is None
    lines = bt.read_results(bt.run_cli("batch", "results", job_id).stdout)
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(40)]


def test_ctrl_c_finishes_requests_in_flight_and_resume_sends_nothing_twice(
    tmp_path: Path, bt, chat_server
) -> None:
    server = chat_server(delay=0.6)
    n = 24
    path = bt.prompt_file(tmp_path, n)
    proc = bt.popen_cli(
        "batch", "submit", str(path), "--base-url", server.url + "/v1", "--concurrency", "4", "--wait"
    )
    wait_until(lambda: len(server.attempts) >= 6, what="requests in flight")  # the 2nd wave is in flight
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 130, err
    job_id = json.loads(bt.run_cli("batch", "list", "--json").stdout)[0]["id"]
    assert f"batch job {job_id} was interrupted (the requests in flight were finished first)" in err
    assert f"llmops batch resume {job_id} --wait" in err
    answered = set(server.successes())
    assert {f"p{i[1:]}" for i in bt.journal_rows(ok=True)} == answered  # every answer was kept
    assert len(answered) < n
    status = json.loads(bt.run_cli("batch", "status", job_id, "--json").stdout)
    assert status["state"] == "interrupted" and status["counts"]["succeeded"] == len(answered)
    resumed = bt.run_cli("batch", "resume", job_id, "--wait", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(server.successes()) == sorted(f"p{i}" for i in range(n))  # nothing was sent twice
