"""Hot reload: swap under load without a failed request, drain what was removed, refuse an invalid file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.gateway.conftest import gateway_processes, openai_section, run_gateway

MSG = [{"role": "user", "content": "hello"}]
ROOT = Path(__file__).resolve().parents[2]


def _loader(holder: dict[str, Any]):
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.table import build_table

    def load():
        sec = GatewaySection.model_validate(holder["section"])
        return sec, build_table(sec)

    return load


def _two_routes(a: str, b: str) -> dict[str, Any]:
    section = openai_section(a, b)
    section["routes"].append(
        {"name": "extra", "deployments": [{"url": b, "model": "stub-model", "name": "e0"}]}
    )
    return section


def test_diff_names_what_changed() -> None:
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.reload import diff, summary
    from llmops.gateway.table import build_table

    a = GatewaySection.model_validate(openai_section("http://h:1/v1", "http://h:2/v1"))
    bdoc = _two_routes("http://h:1/v1", "http://h:3/v1")
    bdoc["retries"] = {"attempts": 2, "backoff_s": 0.5}
    b = GatewaySection.model_validate(bdoc)
    c = diff(a, build_table(a), b, build_table(b))
    assert c["changed"]
    assert c["routes"] == {"added": ["extra"], "removed": [], "modified": []}
    assert c["deployments"] == {"added": ["extra/e0"], "removed": [], "modified": ["chat/d1"]}
    assert c["settings"] == ["retries"] and c["restart_needed"] == []
    assert summary(c) == "routes +extra; deployments +extra/e0 ~chat/d1; settings retries"
    same = diff(a, build_table(a), a, build_table(a))
    assert not same["changed"] and summary(same) == "no changes"


def test_reload_under_load_fails_no_request_and_drains_removed(upstream, tmp_path: Path) -> None:
    fast, other = upstream(tokens=2), upstream(tokens=2)
    slow = upstream(ttft_ms=5, gap_ms=60, tokens=20)  # a 1.2 s stream, in flight across the reload
    start = openai_section(slow.v1, fast.v1, strategy="weighted")
    start["routes"][0]["deployments"][0]["weight"] = 1e6  # the stream goes to d0 (slow)
    holder = {"section": start}
    with run_gateway(holder["section"], tmp_path, loader=_loader(holder)) as gw:
        stop = threading.Event()
        codes: list[int] = []
        lock = threading.Lock()

        def load() -> None:
            with httpx.Client(timeout=20) as client:
                while not stop.is_set():
                    r = client.post(
                        gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG, "max_tokens": 2}
                    )
                    with lock:
                        codes.append(r.status_code)

        # A stream on d0 (slow), which the next configuration removes: drained, not cut.
        streamed: dict[str, Any] = {}

        def stream() -> None:
            body = {"model": "chat", "messages": MSG, "stream": True}
            with httpx.stream("POST", gw.v1 + "/chat/completions", json=body, timeout=20) as r:
                streamed["deployment"] = r.headers["x-llmops-deployment"]
                streamed["text"] = r.read().decode()

        st = threading.Thread(target=stream)
        st.start()
        time.sleep(0.3)
        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.3)
        shrunk = openai_section(fast.v1)  # d0 now points at fast; d1 is removed
        shrunk["routes"].append(
            {"name": "extra", "deployments": [{"url": other.v1, "model": "stub-model", "name": "e0"}]}
        )
        configs = [shrunk, start]
        results = []
        for i in range(6):  # alternate: d0 removed and 'extra' added, then back
            holder["section"] = configs[i % 2]
            results.append(_reload(gw.url))
            time.sleep(0.25)
        holder["section"] = configs[0]
        results.append(_reload(gw.url))
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join(20)
        st.join(20)
        assert len(codes) > 50 and set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
        assert streamed["deployment"] == "d0" and streamed["text"].rstrip().endswith("data: [DONE]")
        first = results[0]["changes"]
        assert first["deployments"] == {
            "added": ["extra/e0"],
            "removed": ["chat/d1"],
            "modified": ["chat/d0"],
        }
        assert results[-1]["generation"] == 8
        r = httpx.post(gw.v1 + "/chat/completions", json={"model": "extra", "messages": MSG}, timeout=10)
        assert r.status_code == 200 and r.headers["x-llmops-deployment"] == "e0"
        assert gw.sample("llmops_gateway_config_generation") == 8
        assert gw.sample("llmops_gateway_config_reloads_total", result="ok") == 7


def _reload(url: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(url + "/admin/reload", json=body, timeout=20)
    assert r.status_code == 200, r.text
    return r.json()


def test_unchanged_deployments_keep_breaker_state(upstream, tmp_path: Path) -> None:
    bad, good = upstream(fault="status500"), upstream(tokens=2)
    holder = {
        "section": openai_section(
            bad.v1,
            good.v1,
            breaker={"failures": 1, "cooldown_s": 60, "error_ratio": None},
            strategy="weighted",
        )
    }
    holder["section"]["routes"][0]["deployments"][0]["weight"] = 1e6
    with run_gateway(holder["section"], tmp_path, loader=_loader(holder)) as gw:
        r = httpx.post(gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG}, timeout=10)
        assert r.status_code == 200 and bad.stats()["requests"] == 1  # d0 failed once: cooled down
        new = dict(holder["section"], retries={"attempts": 2, "backoff_s": 0.02})
        holder["section"] = new
        assert _reload(gw.url)["changes"]["settings"] == ["retries"]
        for _ in range(3):
            r = httpx.post(gw.v1 + "/chat/completions", json={"model": "chat", "messages": MSG}, timeout=10)
            assert r.status_code == 200 and r.headers["x-llmops-deployment"] == "d1"
        assert bad.stats()["requests"] == 1, "d0 is still cooled down after the reload"


@pytest.fixture
def gateway_process(upstream, tmp_path: Path):
    up = upstream(tokens=2)
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(yaml.safe_dump({"gateway": openai_section(up.v1)}))
    with gateway_processes(cfg, 1, {}, tmp_path) as [(proc, url)]:
        yield proc, url, cfg, up, {**os.environ, "PYTHONPATH": str(ROOT)}


def test_invalid_reload_keeps_serving_and_exits_2_then_sighup_applies(gateway_process) -> None:
    proc, url, cfg, up, env = gateway_process
    good = yaml.safe_load(cfg.read_text())
    bad = yaml.safe_load(cfg.read_text())
    bad["gateway"]["routes"][0]["deployments"][0]["modle"] = "typo"
    cfg.write_text(yaml.safe_dump(bad))
    cli = [sys.executable, "-m", "llmops", "gateway", "reload", "--url", url]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"{cfg}:" in done.stderr and "modle" in done.stderr
    r = httpx.post(url + "/v1/chat/completions", json={"model": "chat", "messages": MSG}, timeout=10)
    assert r.status_code == 200, "the old configuration still serves"
    good["gateway"]["routes"].append(
        {"name": "extra", "deployments": [{"url": up.v1, "model": "stub-model", "name": "e0"}]}
    )
    cfg.write_text(yaml.safe_dump(good))
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.post(url + "/v1/chat/completions", json={"model": "extra", "messages": MSG}, timeout=10)
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r.status_code == 200 and r.headers["x-llmops-deployment"] == "e0"
    text = httpx.get(url + "/metrics", timeout=5).text
    assert 'llmops_gateway_config_reloads_total{result="invalid"} 1.0' in text
    assert "llmops_gateway_config_generation 2.0" in text
    done = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and '"no changes"' in done.stdout


def test_health_update_keeps_unchanged_and_resets_modified() -> None:
    import time as _time

    from llmops.gateway.balance import Health
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.metrics import Metrics
    from llmops.gateway.store import MemoryStore
    from llmops.gateway.table import build_table

    a = GatewaySection.model_validate(openai_section("http://h:1/v1", "http://h:2/v1"))
    health = Health(build_table(a), MemoryStore(), a.breaker, Metrics())
    until = _time.time() + 60
    health.cooled = {"chat/d0": until, "chat/d1": until}
    health.inflight["chat/d1"] = 1  # a request still on d1
    b = GatewaySection.model_validate(openai_section("http://h:1/v1", "http://h:3/v1"))
    health.update(build_table(b), b.breaker, modified={"chat/d1"})
    assert health.cooled == {"chat/d0": until}, "d0 unchanged: still cooled down; d1 modified: fresh"
    c = GatewaySection.model_validate(openai_section("http://h:1/v1"))
    health.update(build_table(c), c.breaker, modified=set())
    assert "chat/d1" in health.inflight, "removed, but a request is still on it"
    health.inflight["chat/d1"] = 0
    health.forget({"chat/d1"})
    assert "chat/d1" not in health.inflight and set(health.deps) == {"chat/d0"}


def test_a_reload_cannot_open_a_public_gateway_without_keys(tmp_path: Path, monkeypatch) -> None:
    from llmops.errors import UsageError
    from llmops.gateway.plan import loader

    cfg = tmp_path / "llmops.yaml"
    section = openai_section("http://127.0.0.1:9/v1", keys=[{"name": "ci", "key_env": "CI_KEY"}])
    cfg.write_text(yaml.safe_dump({"gateway": section}))
    load = loader(cfg, None, host="0.0.0.0")
    monkeypatch.setenv("CI_KEY", "k")
    assert [k.name for k in load()[0].keys] == ["ci"]
    del section["keys"]
    cfg.write_text(yaml.safe_dump({"gateway": section}))
    with pytest.raises(UsageError, match=r"refusing to listen on 0\.0\.0\.0"):
        load()
