"""The monitor against the real SmolLM2 server (llama-cpp-python, which has no /metrics) and the real
gateway in front of it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.monitor.top import NO_METRICS
from tests.monitor.conftest import chat, gateway_process, gateway_yaml

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_doctor_reports_a_healthy_smollm2_as_healthy(smollm2_server: str) -> None:
    res = runner.invoke(app, ["doctor", "--endpoint", smollm2_server, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["models"] == ["smollm2"] and doc["ttft_ms"] > 0
    checks = {f["check"]: f for f in doc["findings"]}
    # ok, or warn when this shared 2-core machine is slower than the default 2 s TTFT SLO: not a failure
    assert checks["request"]["status"] in ("ok", "warn") and "streamed" in checks["request"]["message"]
    assert checks["metrics"]["status"] == "info" and "no /metrics" in checks["metrics"]["message"]


def test_top_through_the_gateway_in_front_of_smollm2(smollm2_server: str, tmp_path: Path) -> None:
    # CPU inference on a shared 2-core machine: generous timeouts (the fake-server tests use short ones)
    timeouts = {"first_byte_s": 60, "stall_s": 30, "total_s": 120}
    config = gateway_yaml(smollm2_server, tmp_path, model="smollm2", timeouts=timeouts)
    with gateway_process(config, tmp_path) as gw:
        assert chat(gw + "/v1", timeout=120).status_code == 200
        halt = threading.Event()

        def traffic() -> None:
            stream = False
            while not halt.is_set():
                chat(gw + "/v1", stream=stream)  # non-streamed replies carry usage: the tokens/s figures
                stream = not stream

        senders = [threading.Thread(target=traffic) for _ in range(2)]  # llama.cpp queues the second
        for t in senders:
            t.start()
        try:
            res = runner.invoke(
                app, ["monitor", "top", gw, smollm2_server, "--once", "--json", "--interval", "3"]
            )
        finally:
            halt.set()
            for t in senders:
                t.join(60)
        assert res.exit_code == 0, res.output
        via_gateway, direct = json.loads(res.stdout)["endpoints"]
        assert via_gateway["kind"] == "gateway" and via_gateway["healthy"]
        assert via_gateway["requests_per_s"] > 0 and via_gateway["tokens_out_per_s"] > 0
        assert via_gateway["ttft_p50_ms"] > 0 and via_gateway["e2e_p99_ms"] >= via_gateway["e2e_p50_ms"] > 0
        assert via_gateway["deployments"][0]["healthy"] is True
        # llama-cpp-python's server: reachable and serving, but every figure is unavailable, and why
        assert direct["reachable"] and direct["healthy"] and not direct["has_metrics"]
        assert direct["models"] == ["smollm2"] and direct["requests_per_s"] is None
        assert set(direct["unavailable"].values()) == {NO_METRICS}
        assert "put `llmops gateway` in front" in NO_METRICS

        res = runner.invoke(app, ["monitor", "diagnose", gw, "-m", "chat", "--json"])
        assert res.exit_code == 0, res.output
