"""running(): the real SmolLM2 llama.cpp server on loopback, started, used and stopped."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from llmops.errors import OperationFailed
from llmops.profiles.loader import Catalog
from llmops.serve import running
from llmops.serve.ports import free_port, port_free

pytestmark = pytest.mark.slow


def _profiles():
    catalog = Catalog.discover(None)
    return catalog.model("smollm2").profile, catalog.node("local-cpu").profile


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_running_serves_a_chat_completion_and_stops_cleanly(tmp_path: Path) -> None:
    from openai import OpenAI

    model, node = _profiles()
    port = free_port()
    log = tmp_path / "engine.log"
    with running(model, node, port=port, ready_timeout=120, log_path=log) as ep:
        assert ep.base_url == f"http://127.0.0.1:{port}/v1"
        assert ep.model == "smollm2"
        client = OpenAI(base_url=ep.base_url, api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model=ep.model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, temperature=0
        )
        assert reply.choices[0].message.content.strip()
        assert reply.usage.completion_tokens > 0
        pid = ep.pid
        assert _alive(pid)
    assert not _alive(pid)
    assert port_free("127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert log.read_text()  # the engine's log was kept where asked


def test_engine_dying_at_start_reports_log_tail_and_diagnosis(tmp_path: Path) -> None:
    """A real start-up failure: the GGUF is a truncated file, llama.cpp exits, we diagnose it."""
    model, node = _profiles()
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    source = model.source.model_copy(update={"gguf": str(bad), "package": None})
    broken = model.model_copy(update={"source": source})
    log = tmp_path / "x.log"
    with pytest.raises(OperationFailed) as info, running(broken, node, ready_timeout=60, log_path=log):
        pass
    message = info.value.message
    assert "exited with status" in message
    assert "llama.cpp could not read the model file" in message
    assert "last lines of the llamacpp log" in message
    assert str(tmp_path / "x.log") in (info.value.hint or "")


def test_port_in_use_is_refused_before_starting() -> None:
    from llmops.errors import UsageError

    model, node = _profiles()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is already in use"),
            running(model, node, port=port),
        ):
            pass
