"""The engine dies with llmops (even `kill -9`), readiness comes from our own engine, a busy port is named.

The fast tests use a stand-in engine (a sleeping Python process) and an HTTP server in this process; the
`slow` ones run the real SmolLM2 llama.cpp engine through `llmops serve` and `llmops bench`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmops.errors import OperationFailed
from llmops.serve.engines import Launch, get_engine
from llmops.serve.ports import describe_holders, free_port, listens_in_group, port_free
from llmops.serve.process import EngineProcess

from .conftest import serve_ready, start_serve

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float = 8.0) -> float:
    """Seconds until every pid is gone; fails the test after `timeout`."""
    started = time.monotonic()
    while any(alive(p) for p in pids):
        assert time.monotonic() - started < timeout, f"still running after {timeout} s: {pids}"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def models_server() -> Iterator[int]:
    """Another process's OpenAI-style server (here: a thread of the test) answering /v1/models with 'm'."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"data": [{"id": "m"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_readiness_answered_by_another_process_is_not_ours(models_server: int, tmp_path: Path) -> None:
    launch = Launch("llamacpp", SLEEPER, port=models_server, served_name="m", health_path=None)
    proc = EngineProcess(launch, get_engine("llamacpp"), tmp_path / "engine.log")
    proc.start()
    try:
        assert listens_in_group(models_server, proc.pid) is False
        with pytest.raises(OperationFailed) as info:
            proc.wait_ready(timeout=1.5)
        message = info.value.message
        assert "was not ready after 1.5 s" in message
        assert f"port {models_server} answers from another process, held by pid {os.getpid()} (" in message
    finally:
        proc.stop()
    assert not alive(proc.pid)


def test_busy_port_names_the_holder(models_server: int) -> None:
    text = describe_holders(models_server)
    assert text.startswith(f"held by pid {os.getpid()} (") and "python" in text
    assert not port_free("127.0.0.1", models_server)


def test_kill_9_of_the_parent_stops_the_engine_group(tmp_path: Path) -> None:
    """A stand-in engine and its own child both go when the llmops process holding them is SIGKILLed."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from llmops.serve.engines import Launch, get_engine\n"
        "from llmops.serve.process import EngineProcess\n"
        "argv = [sys.executable, '-c', 'import subprocess, sys, time; "
        'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]); time.sleep(120)\']\n'
        "p = EngineProcess(Launch('llamacpp', argv, port=1), get_engine('llamacpp'), Path(sys.argv[1]))\n"
        "p.start()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "engine.log")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert parent.stdout is not None
        engine = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while len(group := _group(engine)) < 2:  # the engine and its worker
            assert time.monotonic() < deadline, group
            time.sleep(0.1)
        parent.kill()
        parent.wait(10)
        took = wait_gone(group, timeout=8)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert took < 8


def _group(pgid: int) -> list[int]:
    from llmops.serve.ports import group_pids

    return group_pids(pgid)


# --- the real engine -------------------------------------------------------------------------------


def _engine_pids(root: int) -> list[int]:
    import psutil

    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:  # the self-check's probe children come and go (zombies for a moment)
        try:
            if "llamacpp_child.py serve" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
def test_kill_9_of_serve_frees_the_engine_and_the_port(llmops_env: dict[str, str]) -> None:
    port = free_port()
    proc, doc = serve_ready(port, llmops_env)
    try:
        engine = doc["pid"]
        assert alive(engine) and listens_in_group(port, engine)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_gone([engine], timeout=8)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 5
    while not port_free("127.0.0.1", port):
        assert time.monotonic() < deadline, describe_holders(port)
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_9_of_bench_model_frees_the_engine(llmops_env: dict[str, str], tmp_path: Path) -> None:
    """`llmops bench MODEL` serves through llmops.serve.running: its engine dies with it too."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "bench", "smollm2", "--duration", "300", "--output-len", "4"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=llmops_env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not (engines := _engine_pids(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, "bench never started the engine"
            time.sleep(0.2)
        time.sleep(1.0)  # let it get going
        proc.kill()
        proc.wait(10)
        wait_gone(engines, timeout=8)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_two_serves_on_one_port_the_second_fails_clearly(llmops_env: dict[str, str]) -> None:
    port = free_port()
    first, second = start_serve(port, llmops_env), start_serve(port, llmops_env)
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and second.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        loser = first if first.poll() is not None else second
        winner = second if loser is first else first
        out, err = loser.communicate(timeout=30)
        assert loser.returncode == 2, err  # a usage problem: the port is taken, the engine is not to blame
        assert "serving smollm2" not in out
        assert f"port {port} is already in use (held by pid " in err, err
        assert "choose another --port" in err
        assert "exited with status" not in err and "Traceback" not in err
        assert winner.stdout is not None
        assert winner.stdout.readline().startswith("serving smollm2 (llamacpp, pid ")
        engines = _engine_pids(winner.pid)
        winner.send_signal(signal.SIGINT)
        assert winner.wait(30) == 143
        wait_gone(engines)
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
