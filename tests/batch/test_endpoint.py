"""The endpoint side of the local runner: one breaker for a job whose endpoint refuses connections, and
credentials in a base URL that never reach the job store."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli import app
from llmops.serve.ports import free_port


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def test_refused_endpoint_stops_promptly_and_resume_finishes(tmp_path: Path, bt, chat_server) -> None:
    port = free_port()  # nothing listens: every connection is refused
    n = 200
    path = bt.prompt_file(tmp_path, n)
    t0 = time.monotonic()
    down = invoke(
        "batch", "submit", str(path), "--base-url", f"http://127.0.0.1:{port}/v1", "--endpoint-wait", "1",
        "--concurrency", "16", "--wait",
    )  # fmt: skip
    assert time.monotonic() - t0 < 15, "gave up too slowly"
    assert down.exit_code == 1, down.output
    job_id = json.loads(invoke("batch", "list", "--json").stdout)[0]["id"]
    assert f"batch job {job_id} stopped: the endpoint http://127.0.0.1:{port}/v1 refused connections" in (
        down.stderr
    )
    assert f"llmops batch resume {job_id} --wait" in down.stderr
    status = json.loads(invoke("batch", "status", job_id, "--json").stdout)
    assert status["state"] == "interrupted" and status["counts"]["failed"] == 0  # refusals are no results
    server = chat_server(port=port)
    resumed = invoke("batch", "resume", job_id, "--wait", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["counts"] == {"total": n, "succeeded": n, "failed": 0}
    assert sorted(server.successes()) == sorted(f"p{i}" for i in range(n))


def test_endpoint_going_down_keeps_what_finished(tmp_path: Path, bt, chat_server) -> None:
    n = 60
    port = free_port()
    served = {"n": 0}

    def fault(marker: str, attempt: int):
        served["n"] += 1
        if served["n"] == 10:  # the server goes away after answering ten requests
            threading.Thread(target=first.stop).start()
        return None

    first = chat_server(port=port, close_connections=True, fault=fault, delay=0.01)
    path = bt.prompt_file(tmp_path, n)
    down = invoke(
        "batch", "submit", str(path), "--base-url", f"http://127.0.0.1:{port}/v1", "--endpoint-wait", "0.5",
        "--concurrency", "2", "--wait",
    )  # fmt: skip
    assert down.exit_code == 1, down.output
    kept = bt.journal_rows(ok=True)
    assert 10 <= len(kept) < n
    assert {f"p{i[1:]}" for i in kept} == set(first.successes())
    second = chat_server(port=port)
    job_id = json.loads(invoke("batch", "list", "--json").stdout)[0]["id"]
    assert invoke("batch", "resume", job_id, "--wait").exit_code == 0
    assert sorted(first.successes() + second.successes()) == sorted(f"p{i}" for i in range(n))


def test_waits_for_the_endpoint_within_the_bound(tmp_path: Path, bt, chat_server) -> None:
    port = free_port()
    started: list = []
    timer = threading.Timer(1.5, lambda: started.append(chat_server(port=port)))
    timer.start()
    try:
        t0 = time.monotonic()
        result = invoke(
            "batch", "submit", str(bt.prompt_file(tmp_path, 20)), "--base-url", f"http://127.0.0.1:{port}/v1",
            "--endpoint-wait", "30", "--wait", "--json",
        )  # fmt: skip
    finally:
        timer.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["succeeded"] == 20
    assert 1.5 <= time.monotonic() - t0 < 20


def test_credentials_in_the_base_url_are_never_stored(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    secret = "s3cret-PASSWORD-0123"
    host = server.url.removeprefix("http://")
    url = f"http://alice:{secret}@{host}/v1"
    path = bt.prompt_file(tmp_path, 3)
    result = invoke("batch", "submit", str(path), "--base-url", url, "--wait", "--json")
    assert result.exit_code == 0, result.output
    expected = "Basic " + base64.b64encode(f"alice:{secret}".encode()).decode()
    assert {h.get("Authorization") for h in server.seen_headers} == {expected}
    job_id = json.loads(result.stdout)["id"]
    dry = invoke("batch", "submit", str(path), "--base-url", url, "--dry-run", "--json")
    assert json.loads(dry.stdout)["settings"]["base_url"]["value"] == f"http://{host}/v1"
    assert json.loads(dry.stdout)["credentials_in_base_url"] is True

    # a later process needs them again: from $LLMOPS_BATCH_BASE_URL, never from the store
    from llmops.batch.store import JobStore

    store = JobStore()
    job = store.get(job_id)
    assert job.base_url == f"http://{host}/v1" and job.base_url_auth
    job.state, job.ended_at = "interrupted", None
    store.save(job)
    (store.job_dir(job_id) / "results.jsonl").unlink()
    missing = invoke("batch", "resume", job_id, "--wait")
    assert missing.exit_code == 3 and "LLMOPS_BATCH_BASE_URL" in missing.stderr
    assert secret not in missing.stderr
    again = invoke("batch", "resume", job_id, "--wait", env={"LLMOPS_BATCH_BASE_URL": url})
    assert again.exit_code == 0, again.output

    # without --wait the detached worker gets them in its environment, not on disk
    bg = bt.run_cli("batch", "submit", str(path), "--base-url", url, "--new", "--json")
    assert bg.returncode == 0, bg.stderr
    bg_id = json.loads(bg.stdout)["id"]
    deadline = time.monotonic() + 30
    while json.loads(bt.run_cli("batch", "status", bg_id, "--json").stdout)["state"] != "completed":
        assert time.monotonic() < deadline, "the detached worker did not finish"
        time.sleep(0.2)
    data = Path(os.environ["LLMOPS_DATA_DIR"])
    for file in data.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"the credentials leaked into {file}"
    for text in (result.output, dry.output, again.output, bg.stdout, bg.stderr):
        assert secret not in text
