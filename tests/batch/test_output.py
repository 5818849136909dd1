"""`-o` never overwrites without --force, is checked before anything is sent, and is honoured on every path
(submit, resume, the same file submitted again after a kill, results)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from llmops.batch.store import JobStore
from llmops.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def submit(path: Path, server, *extra: str):
    return invoke("batch", "submit", str(path), "--base-url", server.url + "/v1", "--wait", "--json", *extra)


def interrupt_after(job_id: str, kept: int) -> None:
    """As if the run had died after `kept` results: the rest leave the journal, the job is interrupted."""
    store = JobStore()
    job = store.get(job_id)
    with sqlite3.connect(store.path) as con:
        con.execute("DELETE FROM results WHERE job_id = ? AND seq >= ?", (job_id, kept))
    job.state, job.ended_at = "interrupted", None
    store.save(job)
    (store.job_dir(job_id) / "results.jsonl").unlink()


def interrupted_job(tmp_path: Path, bt, server, n: int, kept: int) -> tuple[Path, str, Path, int]:
    """A job of n prompts interrupted after `kept` results, and a file of the user's in the way."""
    path = bt.prompt_file(tmp_path, n)
    job_id = json.loads(submit(path, server).stdout)["id"]
    interrupt_after(job_id, kept)
    taken = tmp_path / "taken.jsonl"
    taken.write_text("mine\n")
    return path, job_id, taken, len(server.hits)


def test_resume_o_never_overwrites_without_force(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    _, job_id, taken, sent = interrupted_job(tmp_path, bt, server, 6, kept=2)
    refused = invoke("batch", "resume", job_id, "--wait", "-o", str(taken))
    assert refused.exit_code == 2, refused.output
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert taken.read_text() == "mine\n" and len(server.hits) == sent  # checked before anything was sent
    forced = invoke("batch", "resume", job_id, "--wait", "-o", str(taken), "--force", "--json")
    assert forced.exit_code == 0, forced.output
    lines = bt.read_results(taken.read_text())
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(6)]
    assert sorted(m for _, m, _ in server.hits[sent:]) == [f"p{i}" for i in range(2, 6)]


def test_resume_o_on_an_ended_job_writes_its_results(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    job_id = json.loads(submit(bt.prompt_file(tmp_path, 3), server).stdout)["id"]
    out = tmp_path / "again.jsonl"
    assert invoke("batch", "resume", job_id, "-o", str(out)).exit_code == 0
    assert len(bt.read_results(out.read_text())) == 3 and len(server.hits) == 3


def test_same_file_again_after_a_kill_honours_o(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    path, job_id, taken, sent = interrupted_job(tmp_path, bt, server, 8, kept=3)
    refused = submit(path, server, "-o", str(taken))
    assert refused.exit_code == 2 and "already exists" in refused.stderr
    assert taken.read_text() == "mine\n" and len(server.hits) == sent
    out = tmp_path / "out.jsonl"
    again = submit(path, server, "-o", str(out))
    assert again.exit_code == 0, again.output
    assert f"batch job {job_id} resuming" in again.stderr
    doc = json.loads(again.stdout)
    assert doc["id"] == job_id and doc["output"] == str(out.resolve())
    lines = bt.read_results(out.read_text())
    assert [ln["custom_id"] for ln in lines] == [f"r{i}" for i in range(8)]
    assert sorted(m for _, m, _ in server.hits[sent:]) == [f"p{i}" for i in range(3, 8)]


def test_missing_folder_is_exit_2_before_anything_is_sent(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    path = bt.prompt_file(tmp_path, 2)
    missing = tmp_path / "missing" / "x.jsonl"
    refused = submit(path, server, "-o", str(missing))
    assert refused.exit_code == 2, refused.output
    assert str(missing.parent) in refused.stderr and "internal error" not in refused.stderr
    assert server.hits == [] and json.loads(invoke("batch", "list", "--json").stdout) == []
    job_id = json.loads(submit(path, server).stdout)["id"]
    results = invoke("batch", "results", job_id, "-o", str(missing))
    assert results.exit_code == 2 and str(missing.parent) in results.stderr
    assert not missing.parent.exists()


def test_results_o_force_replaces_and_keeps_one_line_per_request(tmp_path: Path, bt, chat_server) -> None:
    server = chat_server()
    job_id = json.loads(submit(bt.prompt_file(tmp_path, 2), server).stdout)["id"]
    out = tmp_path / "r.jsonl"
    out.write_text("old\n")
    assert invoke("batch", "results", job_id, "-o", str(out)).exit_code == 2
    assert out.read_text() == "old\n"
    assert invoke("batch", "results", job_id, "-o", str(out), "--force").exit_code == 0
    assert [ln["custom_id"] for ln in bt.read_results(out.read_text())] == ["r0", "r1"]


def test_remote_job_without_wait_writes_o_when_it_ends(tmp_path: Path, bt, fake_openai) -> None:
    fake = fake_openai()
    env = {"OPENAI_API_KEY": bt.OPENAI_KEY}
    path = bt.write_lines(tmp_path / "in.jsonl", [bt.chat_line(f"q{i}", f"hi {i}") for i in range(2)])
    out = tmp_path / "out.jsonl"
    args = ["batch", "submit", str(path), "-p", "openai", "--base-url", fake.url + "/v1", "-o", str(out)]
    sub = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert sub.exit_code == 0, sub.output
    job_id = json.loads(sub.stdout)["id"]
    assert not out.exists()
    for _ in range(5):  # validating -> in_progress -> finalizing -> completed
        state = json.loads(CliRunner().invoke(app, ["batch", "status", job_id, "--json"], env=env).stdout)
        if state["state"] == "completed":
            break
    assert state["state"] == "completed"
    assert [ln["custom_id"] for ln in bt.read_results(out.read_text())] == ["q0", "q1"]
