"""End to end: a real Prometheus scrapes a real gateway in front of a server that answers 500, evaluates the
rules `llmops monitor rules` wrote, and its own API shows HighLLMErrorRate go pending, then firing.

Scrape and evaluation every second; the test-only changes are `monitor.alert_for` shortening the alert's
`for:` and `monitor.eval_interval` (the threshold and the expression are the shipped ones)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from llmops.monitor.config import resolve
from llmops.monitor.rules import render
from llmops.workspace import Workspace
from tests.conftest import free_port, wait_http
from tests.monitor.conftest import chat, gateway_process, gateway_yaml, stop

FOR = "4s"


def test_error_rate_alert_goes_pending_then_firing(
    prometheus_bin: str, fake: Callable[..., str], tmp_path: Path
) -> None:
    ws = Workspace.model_validate(
        {"monitor": {"alert_for": {"HighLLMErrorRate": FOR}, "eval_interval": "1s"}}
    )
    _, rules_text = render(resolve(ws))
    (tmp_path / "rules.yml").write_text(rules_text)
    upstream = fake(fault="status500")
    with gateway_process(gateway_yaml(upstream + "/v1", tmp_path), tmp_path) as gw:
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "scrape_configs": [
                {"job_name": "llmops-gateway", "static_configs": [{"targets": [gw.removeprefix("http://")]}]}
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("wb"),
            start_new_session=True,
        )
        api = f"http://127.0.0.1:{port}/api/v1"
        halt = threading.Event()

        def traffic() -> None:
            while not halt.is_set():
                chat(gw + "/v1")
                time.sleep(0.05)

        sender = threading.Thread(target=traffic)
        try:
            wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60)
            sender.start()
            states: dict[str, float] = {}
            t0 = time.monotonic()
            while "firing" not in states and time.monotonic() - t0 < 90:
                for a in httpx.get(api + "/alerts", timeout=5).json()["data"]["alerts"]:
                    if a["labels"]["alertname"] == "HighLLMErrorRate":
                        states.setdefault(a["state"], time.monotonic() - t0)
                        labels = a["labels"]
                time.sleep(0.25)
            assert "pending" in states and "firing" in states, (
                states,
                (tmp_path / "prometheus.log").read_text(),
            )
            assert states["pending"] < states["firing"]
            assert labels["model"] == "chat" and labels["severity"] == "warning"
            # every shipped rule evaluated without an error against the real series
            groups = httpx.get(api + "/rules", timeout=5).json()["data"]["groups"]
            bad = [
                (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] == "err"
            ]
            assert bad == []
        finally:
            halt.set()
            if sender.is_alive():
                sender.join(30)
            stop(prom)
