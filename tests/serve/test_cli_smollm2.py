"""`llmops serve smollm2` as a real subprocess: ready, a chat completion through openai, SIGINT cleans up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops.serve.ports import free_port, port_free

pytestmark = pytest.mark.slow


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed in {timeout}s; got {lines}")


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_serve_smollm2_chat_then_sigint_leaves_nothing(tmp_path: Path, llmops_env: dict[str, str]) -> None:
    from openai import OpenAI

    port = free_port()
    log = tmp_path / "engine.log"
    stderr = (tmp_path / "stderr.txt").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "serve", "smollm2", "--port", str(port), "--log-file", str(log)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=llmops_env,
    )
    try:
        lines = _read_until(proc, "curl ", timeout=120)
        ready_s = time.monotonic() - started
        assert lines[0].startswith("serving smollm2 (llamacpp, pid ") and lines[0].endswith(
            f"at http://127.0.0.1:{port}/v1"
        )
        assert "model name: smollm2" in lines
        assert lines[-1].strip().startswith(f"curl http://127.0.0.1:{port}/v1/chat/completions")
        assert ready_s < 60
        engine_pids = _children(proc.pid)
        assert engine_pids, "the engine runs as a child of llmops"

        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=12
        )
        assert reply.choices[0].message.content.strip()

        proc.send_signal(signal.SIGINT)
        # llmops sends SIGTERM to the engine's group; uvicorn shuts down gracefully, then re-raises the
        # signal, so the engine's own status is 128 + 15, and llmops exits with it.
        assert proc.wait(30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr.close()
    assert not any(_alive(pid) for pid in engine_pids)
    assert port_free("127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    err_text = (tmp_path / "stderr.txt").read_text()
    assert "SIGINT: stopped llamacpp (status 143); port" in err_text
    assert "Traceback" not in err_text


def test_sigterm_also_stops_cleanly(tmp_path: Path, llmops_env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "serve", "smollm2", "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=llmops_env,
    )
    try:
        import json

        assert proc.stdout is not None
        text = ""  # one JSON document on stdout once ready
        while not text.rstrip().endswith("}"):
            text += proc.stdout.readline()
        doc = json.loads(text)
        assert doc["base_url"] == f"http://127.0.0.1:{port}/v1" and doc["model"] == "smollm2"
        engine = doc["pid"]
        assert _alive(engine)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _alive(engine)
    assert port_free("127.0.0.1", port)


def test_port_in_use_is_exit_2(llmops_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "llmops", "serve", "smollm2", "--port", str(port)],
            capture_output=True,
            text=True,
            env=llmops_env,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"error: port {port} on 127.0.0.1 is already in use (held by pid {os.getpid()} (" in result.stderr
    assert "; pick another with --port, or stop that process" in result.stderr
