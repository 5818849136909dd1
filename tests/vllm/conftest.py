"""The real vLLM (CPU build, `.venv-vllm` from `make vllm-env`) serving SmolLM2: started ONCE per session.

`llmops serve smollm2-vllm --json` runs as a real subprocess, the way a user starts it: the 16-bit checkpoint
is made from the shipped GGUF into a session data dir, vLLM starts with the node profile's CPU settings
(1 GiB KV space, --enforce-eager), and the tests share it. At the end it is stopped with SIGINT, as Ctrl-C
would, and the stop is checked: exit status, the engine's process group gone, the port free.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_BUDGET_S = 900.0  # checkpoint conversion (~50 s) + an eager start (~30-90 s on 2 busy cores)
STOP_BUDGET_S = 60.0


@dataclass(frozen=True)
class VllmServer:
    base_url: str
    model: str
    pid: int  # the engine's pid (and process group)
    log: Path
    data_dir: Path
    ready_s: float
    env: dict[str, str]
    proc: subprocess.Popen[str]  # `llmops serve`
    err: Path  # its stderr

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


def llmops_env(data_dir: Path) -> dict[str, str]:
    """A `python -m llmops` environment for this checkout: a session data dir, offline, no LLMOPS_SERVE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOPS_SERVE_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        LLMOPS_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


def require_vllm_env() -> None:
    from llmops.serve.engines import get_engine
    from llmops.serve.envs import find_engine_env, require

    install = require("vllm", "vllm", find_engine_env("vllm", get_engine("vllm").modules))
    assert install.build == "cpu", f"these tests need vLLM's CPU build; found {install.describe()}"


def wait_json(proc: subprocess.Popen[str], out: Path, err: Path, budget: float) -> dict:
    """The JSON document `serve --json` prints once ready; fails with stderr when it dies or times out."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        if text.strip():
            try:
                return json.loads(text)
            except ValueError:
                pass  # still being written
        if proc.poll() is not None:
            pytest.fail(f"llmops serve exited {proc.returncode} before ready:\n{err.read_text()[-3000:]}")
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_BUDGET_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    pytest.fail(f"llmops serve not ready after {budget:g} s:\n{err.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def vllm_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llmops-vllm-data")


@dataclass(frozen=True)
class Start:
    name: str  # the files' stem in the data dir: NAME.engine.log, NAME.out, NAME.err
    args: tuple[str, ...]  # after `llmops serve`
    prefix: tuple[str, ...] = ()  # e.g. `ip netns exec NS`
    env: tuple[tuple[str, str], ...] = ()  # added to the session's environment


@contextmanager
def serving_all(data_dir: Path, *starts: Start) -> Iterator[list[VllmServer]]:
    """`[prefix] python -m llmops serve ARGS --json` for each, all started at once (a multi-node head and its
    follower wait for each other), then each waited for until ready. At the end each still running is
    stopped with SIGINT (as Ctrl-C would), in order, and checked: the engine's process group is gone."""
    env = llmops_env(data_dir)
    running: list[tuple[Start, subprocess.Popen[str], Path, Path, Path]] = []
    docs: list[dict] = []
    started = time.monotonic()
    try:
        for start in starts:
            log, out, err = (data_dir / f"{start.name}.{n}" for n in ("engine.log", "out", "err"))
            with out.open("w") as out_f, err.open("w") as err_f:
                proc = subprocess.Popen(
                    [*start.prefix, sys.executable, "-m", "llmops", "serve", *start.args, "--json",
                     "--log-file", str(log), "--ready-timeout", str(int(READY_BUDGET_S))],
                    stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL, env={**env, **dict(start.env)},
                    text=True, start_new_session=True,
                )  # fmt: skip
            running.append((start, proc, log, out, err))
        servers = []
        for _start, proc, log, out, err in running:
            doc = wait_json(proc, out, err, READY_BUDGET_S)
            docs.append(doc)
            servers.append(
                VllmServer(doc.get("base_url", ""), doc.get("model", ""), doc["pid"], log, data_dir,
                           time.monotonic() - started, env, proc, err)
            )  # fmt: skip
        yield servers
    finally:
        for _start, proc, *_ in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(STOP_BUDGET_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"llmops serve did not stop within {STOP_BUDGET_S:g} s of SIGINT")
    for doc in docs:
        assert_group_gone(doc["pid"])


def assert_group_gone(pgid: int, within: float = 15.0) -> None:
    """The engine's whole process group is gone (killed processes take a moment to be reaped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail(f"process group {pgid} still has processes {within:g} s after llmops stopped")


@contextmanager
def serving(data_dir: Path, name: str, *args: str) -> Iterator[VllmServer]:
    """One `llmops serve ARGS` until ready (serving_all); stopped with SIGINT, which it reports."""
    with serving_all(data_dir, Start(name, args)) as (server,):
        yield server
    if server.proc.returncode == 0:
        assert "stopped vllm" in server.err.read_text()


@pytest.fixture(scope="session")
def vllm_server(vllm_data_dir: Path) -> Iterator[VllmServer]:
    from tests.conftest import free_port

    require_vllm_env()
    with serving(vllm_data_dir, "serve", "smollm2-vllm", "--port", str(free_port())) as server:
        yield server
    assert server.proc.returncode == 0, server.err.read_text()[-2000:]


def logged_kv_tokens(log_text: str) -> int:
    """`CPU KV cache size: 46,592 tokens` from vLLM's start-up log."""
    import re

    found = re.findall(r"CPU KV cache size: ([\d,]+) tokens", log_text)
    assert found, "vLLM logged no 'CPU KV cache size'"
    return int(found[-1].replace(",", ""))
