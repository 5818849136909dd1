"""`llmops gateway cache stats|clear`: against Redis directly, and against a running gateway's memory."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from typer.testing import CliRunner

from llmops.cli import app
from tests.conftest import run_llmops
from tests.gateway.conftest import openai_section, run_gateway

runner = CliRunner()
ASK = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "max_tokens": 4}


def cli(config: Path, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(config), "gateway", "cache", *args])


def workspace(tmp_path: Path, section: dict[str, Any], port: int | None = None) -> Path:
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(yaml.safe_dump({"gateway": {**section, **({"port": port} if port else {})}}))
    return cfg


def test_stats_and_clear_in_redis(upstream, tmp_path: Path, redis_url: str) -> None:
    up = upstream(ttft_ms=1, gap_ms=0, tokens=2)
    section = openai_section(up.v1, redis=redis_url, cache=True)
    cfg = workspace(tmp_path, section)
    assert json.loads(cli(cfg, "clear", "--json").stdout)["store"] == "redis"  # start empty
    with run_gateway(section, tmp_path) as gw, httpx.Client(timeout=10) as http:
        assert [http.post(gw.v1 + "/chat/completions", json=ASK).headers["x-llmops-cache"] for _ in range(3)] == [
            "miss", "hit", "hit"
        ]  # fmt: skip
        deadline = time.monotonic() + 5  # counters reach Redis within a second
        while (doc := json.loads(cli(cfg, "stats", "--json").stdout))["total"]["lookups"] < 3:
            assert time.monotonic() < deadline, doc
            time.sleep(0.2)
        chat = doc["routes"]["chat"]
        assert (chat["entries"], chat["hit"], chat["miss"], chat["hit_rate"]) == (1, 2, 1, 0.6667)
        assert chat["saved_tokens"] > 0 and "redis://127.0.0.1" in doc["where"]
        table = cli(cfg, "stats")
        assert table.exit_code == 0 and "chat" in table.stdout and "total" in table.stdout
        cleared = cli(cfg, "clear", "--route", "chat")
        assert cleared.exit_code == 0 and "removed 1 cached replies (route chat" in cleared.stdout
        assert http.post(gw.v1 + "/chat/completions", json=ASK).headers["x-llmops-cache"] == "miss"


def test_stats_and_clear_of_a_running_gateways_memory(upstream, tmp_path: Path) -> None:
    up = upstream(ttft_ms=1, gap_ms=0, tokens=2)
    section = openai_section(up.v1, cache={"exact": {"ttl": 60}})
    with run_gateway(section, tmp_path) as gw, httpx.Client(timeout=10) as http:
        port = int(gw.url.rsplit(":", 1)[1])
        cfg = workspace(tmp_path, section, port)
        http.post(gw.v1 + "/chat/completions", json=ASK)
        http.post(gw.v1 + "/chat/completions", json=ASK)
        proc = run_llmops("--config", str(cfg), "gateway", "cache", "stats", "--json", "--route", "chat")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)  # --json: one document on stdout, nothing else
        assert doc["store"] == "memory" and doc["routes"]["chat"]["entries"] == 1 and doc["total"]["hit"] == 1
        assert json.loads(cli(cfg, "clear", "--json").stdout)["removed"] == 1
        assert http.post(gw.v1 + "/chat/completions", json=ASK).headers["x-llmops-cache"] == "miss"


def test_errors_name_the_fix(upstream, tmp_path: Path) -> None:
    up = upstream(ttft_ms=1, gap_ms=0, tokens=2)
    from tests.conftest import free_port

    cfg = workspace(tmp_path, openai_section(up.v1, cache=True), free_port())
    unknown = cli(cfg, "stats", "--route", "chta")
    assert unknown.exit_code == 2 and "did you mean 'chat'" in unknown.output
    down = cli(cfg, "stats")
    assert down.exit_code == 1 and "no gateway answers" in down.output and "llmops gateway" in down.output
    none = cli(workspace(tmp_path, openai_section(up.v1)), "clear")
    assert none.exit_code == 2 and "has no cache" in none.output


def test_admin_paths_refuse_callers_that_are_not_on_loopback() -> None:
    from llmops.gateway.cache.admin import serve_admin

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "path": "/admin/cache/clear",
        "method": "POST",
        "client": ("10.1.2.3", 5555),
        "query_string": b"",
    }
    asyncio.run(serve_admin(object(), scope, send))
    assert sent[0]["status"] == 403
