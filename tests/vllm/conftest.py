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
    proc.wait(STOP_BUDGET_S)
    pytest.fail(f"llmops serve not ready after {budget:g} s:\n{err.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def vllm_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llmops-vllm-data")


@pytest.fixture(scope="session")
def vllm_server(vllm_data_dir: Path) -> Iterator[VllmServer]:
    from tests.conftest import free_port

    require_vllm_env()
    env = llmops_env(vllm_data_dir)
    log, out, err = (vllm_data_dir / n for n in ("engine.log", "serve.out", "serve.err"))
    started = time.monotonic()
    with out.open("w") as out_f, err.open("w") as err_f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmops", "serve", "smollm2-vllm", "--port", str(free_port()), "--json",
             "--log-file", str(log), "--ready-timeout", str(int(READY_BUDGET_S))],
            stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL, env=env, text=True,
        )  # fmt: skip
        try:
            doc = wait_json(proc, out, err, READY_BUDGET_S)
            yield VllmServer(
                doc["base_url"], doc["model"], doc["pid"], log, vllm_data_dir, time.monotonic() - started, env
            )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                rc = proc.wait(STOP_BUDGET_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"llmops serve did not stop within {STOP_BUDGET_S:g} s of SIGINT")
    assert rc == 0, err.read_text()[-2000:]
    assert "stopped vllm" in err.read_text()
    with pytest.raises(ProcessLookupError):
        os.killpg(doc["pid"], 0)  # the engine's whole process group is gone


def logged_kv_tokens(log_text: str) -> int:
    """`CPU KV cache size: 46,592 tokens` from vLLM's start-up log."""
    import re

    found = re.findall(r"CPU KV cache size: ([\d,]+) tokens", log_text)
    assert found, "vLLM logged no 'CPU KV cache size'"
    return int(found[-1].replace(",", ""))
