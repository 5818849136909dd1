"""`llmops gateway` as a user runs it: --dry-run (JSON and table), --k8s, usage, and file:line errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.gateway.conftest import KEY, openai_section, run_gateway


def invoke(*args: str, env: dict[str, str] | None = None):
    from llmops.cli import app

    return CliRunner().invoke(app, list(args), env=env)


def write_config(tmp_path: Path, section: dict) -> Path:
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(yaml.safe_dump({"gateway": section}))
    return cfg


def test_dry_run_json_shows_origins_and_probes(upstream, tmp_path: Path) -> None:
    up = upstream()
    section = openai_section(up.v1, "http://127.0.0.1:9/v1", port=4100)
    section["keys"] = [{"name": "ci", "key_env": "CI_KEY", "rpm": 5}]
    cfg = write_config(tmp_path, section)
    r = invoke(
        "--config",
        str(cfg),
        "gateway",
        "--dry-run",
        "--json",
        "--host",
        "0.0.0.0",
        env={"LLMOPS_GATEWAY_WORKERS": "1"},
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "gateway"
    assert doc["settings"]["host"] == {"value": "0.0.0.0", "origin": "flag"}
    assert doc["settings"]["port"] == {"value": 4100, "origin": "workspace"}
    assert doc["settings"]["workers"] == {"value": 1, "origin": "env"}
    deps = doc["routes"][0]["deployments"]
    assert deps[0]["probe"]["ok"] is True and deps[1]["probe"]["ok"] is False
    assert doc["keys"] == [
        {
            "name": "ci",
            "from": "$CI_KEY",
            "routes": None,
            "rpm": 5,
            "tpm": None,
            "budget_usd": None,
            "budget_route": None,
        }
    ]
    table = invoke("--config", str(cfg), "gateway", "--dry-run", "--no-probe")
    assert table.exit_code == 0 and "d0" in table.stdout and "$CI_KEY" in table.stdout


def test_config_errors_name_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(
        "gateway:\n  routes:\n    - name: chat\n      deployments:\n        - url: http://x/v1\n"
        "          modle: m\n"
    )
    r = invoke("--config", str(cfg), "gateway", "--dry-run")
    assert r.exit_code == 2
    assert f"{cfg}:6: gateway.routes.0.deployments.0.modle" in r.stderr


def test_workers_and_open_listening_are_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, openai_section("http://127.0.0.1:9/v1"))
    r = invoke("--config", str(cfg), "gateway", "--host", "0.0.0.0")
    assert r.exit_code == 2 and "no client keys" in r.stderr
    r = invoke("--config", str(cfg), "gateway", "--workers", "2")
    assert r.exit_code == 2 and "one process per replica" in r.stderr


def test_k8s_manifests_are_schema_valid(tmp_path: Path) -> None:
    import kubernetes_validate

    section = {
        "redis": "redis://redis:6379/0",
        "keys": [{"name": "ci", "key_env": "CI_KEY"}],
        "routes": [{"name": "gpt", "deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}],
    }
    cfg = write_config(tmp_path, section)
    out = tmp_path / "k8s"
    r = invoke("--config", str(cfg), "gateway", "--k8s", "-o", str(out))
    assert r.exit_code == 0, r.output
    text = (out / "llmops-gateway.yaml").read_text()
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
    ]
    version = kubernetes_validate.latest_version()
    for d in docs[:4]:
        kubernetes_validate.validate(d, version, strict=True)
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in docs[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert set(env) == {"CI_KEY", "OPENAI_API_KEY"}
    assert docs[3]["spec"]["maxReplicas"] >= 2
    assert docs[4]["spec"]["selector"]["matchLabels"] == docs[2]["metadata"]["labels"]
    assert "gateway" in yaml.safe_load(docs[0]["data"]["llmops.yaml"])
    again = invoke("--config", str(cfg), "gateway", "--k8s", "-o", str(out))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert invoke("--config", str(cfg), "gateway", "--k8s", "-o", str(out), "--force").exit_code == 0


def test_usage_summary_from_a_real_run(upstream, tmp_path: Path) -> None:
    up = upstream(tokens=3)
    section = openai_section(up.v1)
    section["keys"] = [{"name": "ci", "key_env": "CI_KEY"}]
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        for model in ("chat", "chat", "nope"):
            httpx.post(
                gw.v1 + "/chat/completions",
                headers={"authorization": f"Bearer {KEY}"},
                timeout=5,
                json={"model": model, "messages": [{"role": "user", "content": "x"}]},
            )
    r = invoke("gateway", "usage", "--log", str(gw.usage_path), "--by", "route", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["route"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["chat"]["requests"] == 2 and rows["chat"]["output_tokens"] == 6
    assert rows["nope"]["errors"] == 1
    by_key = invoke("gateway", "usage", "--log", str(gw.usage_path), "--since", "1h")
    assert by_key.exit_code == 0 and "ci" in by_key.stdout
    bad = invoke("gateway", "usage", "--log", str(gw.usage_path), "--since", "yesterday")
    assert bad.exit_code == 2


@pytest.mark.slow
def test_real_smollm2_behind_the_gateway(smollm2_server: str, tmp_path: Path) -> None:
    import openai

    section = {"routes": [{"name": "smol", "deployments": [{"url": smollm2_server, "model": "smollm2"}]}]}
    with run_gateway(section, tmp_path) as gw:
        c = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
        raw = c.chat.completions.with_raw_response.create(
            model="smol", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0
        )
        assert raw.headers["x-llmops-route"] == "smol"
        assert raw.parse().choices[0].message.content
        text = "".join(
            ch.choices[0].delta.content or ""
            for ch in c.chat.completions.create(
                model="smol", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, stream=True
            )
            if ch.choices
        )
        assert text
        assert gw.sample("llm_requests_total", model="smol", status="200") == 2
        assert gw.sample("llm_token_usage_total", model="smol", type="output") > 0
