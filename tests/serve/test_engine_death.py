"""An engine that dies is reported as a death: signal by name, phase, last log lines, what to try; exit 1.

The real SmolLM2 llama.cpp engine is killed with SIGSEGV or SIGKILL from the test, while idle and while
answering, under `llmops serve`, `llmops bench` and the library's `running()`; nothing may be left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from llmops.errors import OperationFailed
from llmops.serve.death import EngineDeath
from llmops.serve.exits import describe_exit, signal_name
from llmops.serve.ports import port_free

from .conftest import serve_ready
from .test_processes import _engine_pids, alive, wait_gone

# --- the words (fast) ------------------------------------------------------------------------------------


def test_exit_statuses_in_words() -> None:
    assert describe_exit(-11) == "died of SIGSEGV (segmentation fault)"
    assert describe_exit(-9) == "died of SIGKILL (killed)"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(0) == "exited cleanly (status 0)"
    assert signal_name(139) == "SIGSEGV" and signal_name(-4) == "SIGILL" and signal_name(1) is None


def _death(**kw: object) -> EngineDeath:
    base: dict[str, object] = dict(
        engine="llamacpp",
        pid=42,
        returncode=-11,
        ready=True,
        busy=True,
        requests_seen=0,
        seconds_after_ready=2.5,
        log_text=(
            "llama_context: n_ctx = 2048\nFatal Python error: Segmentation fault\n\n"
            'Thread 0x1 (most recent call first):\n  File "/x/threading.py", line 320 in wait\n\n'
            'Current thread 0x2 (most recent call first):\n  File "/x/llama_cpp/llama.py", line 700 in eval\n'
            '  File "/x/llama_cpp/llama.py", line 900 in generate\n\nExtension modules: yaml._yaml (total: 1)\n'
        ),
        log_path=Path("/tmp/engine.log"),
        cpu_hint="serve with --extra-buffer-types off",
    )
    base.update(kw)
    return EngineDeath(**base)  # type: ignore[arg-type]


def test_the_report_names_signal_phase_log_and_fix() -> None:
    death = _death()
    line = death.message()
    assert "\n" not in line
    assert line.startswith(
        "llamacpp (pid 42) died of SIGSEGV (segmentation fault) while answering its first request"
    )
    assert "2.5 s after it was ready" in line
    assert (
        'last log lines: Fatal Python error: Segmentation fault | crashed in File "/x/llama_cpp/llama.py", line 700 in eval'
        in line
    )
    err = death.error()
    assert err.exit_code == 1 and "--extra-buffer-types off" in (err.hint or "")
    assert "stopped" not in line and "SIGINT" not in line


@pytest.mark.parametrize(
    ("kw", "phase"),
    [
        ({"ready": False}, "during start-up"),
        ({"busy": False}, "while idle, before any request"),
        ({"busy": False, "requests_seen": 3}, "while idle, after 3 requests"),
        ({"busy": True, "requests_seen": 5}, "while busy (5 requests answered before)"),
        ({"busy": None}, "before any request"),
    ],
)
def test_phases(kw: dict[str, object], phase: str) -> None:
    assert _death(**kw).phase() == phase


def test_sigkill_points_at_the_oom_killer() -> None:
    assert "out-of-memory killer" in _death(returncode=-9).what_to_try()


# --- the real engine ----------------------------------------------------------------------------------


def _assert_reported(proc: subprocess.Popen[str], engine: int, port: int, started: float, expect: str) -> str:
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - started
    assert proc.returncode == 1, err
    assert took < 5, f"the death was reported after {took:.1f} s"
    assert expect in err, err
    assert "Traceback" not in err and "stopped" not in err and "SIGINT" not in err, err
    assert "last log lines:" in err and "try:" in err, err
    wait_gone([engine])
    assert port_free("127.0.0.1", port)
    return err


@pytest.mark.slow
def test_serve_reports_a_segfault_while_idle(llmops_env: dict[str, str]) -> None:
    from tests.conftest import free_port

    port = free_port()
    proc, doc = serve_ready(port, llmops_env)
    engine = doc["pid"]
    try:
        time.sleep(1.5)  # idle for a while after start-up
        os.kill(engine, signal.SIGSEGV)
        started = time.monotonic()
        _assert_reported(
            proc,
            engine,
            port,
            started,
            f"llamacpp (pid {engine}) died of SIGSEGV (segmentation fault) while idle",
        )
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_serve_reports_a_segfault_while_answering_and_the_client_fails(llmops_env: dict[str, str]) -> None:
    from tests.conftest import free_port

    port = free_port()
    proc, doc = serve_ready(port, llmops_env)
    engine = doc["pid"]
    errors: list[BaseException] = []
    first_token = threading.Event()

    def client() -> None:
        body = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Count from one to one thousand in words."}],
            "max_tokens": 2000,
            "stream": True,
        }
        try:
            with httpx.stream(
                "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60
            ) as r:
                for _ in r.iter_lines():
                    first_token.set()
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        assert first_token.wait(60)
        os.kill(engine, signal.SIGSEGV)
        started = time.monotonic()
        err = _assert_reported(
            proc,
            engine,
            port,
            started,
            "died of SIGSEGV (segmentation fault) while answering its first request",
        )
        thread.join(30)
        assert errors, "the client's stream ended as if complete"
        assert "Fatal Python error: Segmentation fault" in err  # faulthandler's report is in the log's tail
    finally:
        if proc.poll() is None:
            proc.kill()
        thread.join(5)


@pytest.mark.slow
def test_bench_stops_at_once_with_the_death_report(llmops_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmops",
            "bench",
            "smollm2",
            "--duration",
            "300",
            "--output-len",
            "16",
            "--max-concurrency",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=llmops_env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not (engines := _engine_pids(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, "bench never started the engine"
            time.sleep(0.2)
        busy = time.monotonic() + 60
        while not _has_client(engines[0]):  # bench's requests are in flight
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < busy, "bench never sent a request"
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(engines[0], signal.SIGSEGV)
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 5
        assert proc.returncode == 1, err
        assert f"llamacpp (pid {engines[0]}) died of SIGSEGV (segmentation fault) while answering" in err, err
        assert "Traceback" not in err and "APIConnectionError" not in err
        assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
            err.splitlines()[0]
        ] or "error:" in err
        wait_gone(engines)
    finally:
        if proc.poll() is None:
            proc.kill()


def _has_client(pid: int) -> bool:
    import psutil

    try:
        return any(c.status == psutil.CONN_ESTABLISHED for c in psutil.Process(pid).net_connections("tcp"))
    except psutil.Error:
        return False  # gone: the caller sees bench's own report


@pytest.mark.slow
def test_running_is_interrupted_within_a_second_when_the_engine_is_killed_idle(tmp_path: Path) -> None:
    """What bench and try use: a death while the caller waits (idle engine) interrupts the caller."""
    from llmops.profiles.loader import Catalog
    from llmops.serve import running

    catalog = Catalog.discover()
    model, node = catalog.get("model", "smollm2").profile, catalog.get("node", "local-cpu").profile
    killed_at: list[float] = []
    log = tmp_path / "engine.log"
    with (
        pytest.raises(OperationFailed) as info,
        running(model, node, interrupt_on_death=True, log_path=log) as ep,
    ):
        pid = ep.pid

        def kill() -> None:
            killed_at.append(time.monotonic())
            os.kill(pid, signal.SIGKILL)

        threading.Timer(0.5, kill).start()
        time.sleep(30)  # idle: only the death can end this early
    took = time.monotonic() - killed_at[0]
    assert took < 1.5, took
    message = info.value.message
    assert message.startswith(f"llamacpp (pid {pid}) died of SIGKILL (killed) while idle, before any request")
    assert "out-of-memory killer" in (info.value.hint or "")
    assert not alive(pid)


@pytest.mark.slow
def test_the_serve_demo_prints_one_line_when_the_engine_dies(llmops_env: dict[str, str]) -> None:
    from tests.conftest import REPO, free_port

    demo = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "serve_demo.py"), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=llmops_env,
    )
    try:
        assert demo.stdout is not None
        assert demo.stdout.readline().startswith("ready: "), demo.communicate()[1]
        engines = _engine_pids(demo.pid)
        deadline = time.monotonic() + 60
        while not _has_client(engines[0]):  # the demo's chat request
            assert demo.poll() is None and time.monotonic() < deadline, demo.communicate()[1]
            time.sleep(0.05)
        os.kill(engines[0], signal.SIGSEGV)
        _, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 1
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[0].startswith(
        f"error: llamacpp (pid {engines[0]}) died of SIGSEGV (segmentation fault) while"
    ), err
    assert lines[-1].startswith("demo failed: the chat request got APIConnectionError"), err
    assert len(lines) == 2, err
    wait_gone(engines)
