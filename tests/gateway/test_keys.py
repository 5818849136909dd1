"""Client keys and limits: 401, 403, 429 with Retry-After (RPM, TPM), budgets (refusal or downgrade)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx

from tests.gateway.conftest import KEY, openai_section, run_gateway

MSG = [{"role": "user", "content": "hello"}]


def post(gw, key: str | None, model: str = "chat", path: str = "/chat/completions", **body) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    payload = {"model": model, "messages": MSG, "max_tokens": 4, **body}
    return httpx.post(gw.v1 + path, json=payload, headers=headers, timeout=10)


def keyed(*urls: str, **key) -> dict:
    section = openai_section(*urls)
    section["routes"].append({"name": "secret", "deployments": [{"url": urls[0], "model": "stub-model"}]})
    section["keys"] = [
        {"name": "ci", "key_env": "CI_KEY", "routes": ["chat"], **key},
        {"name": "ops", "key_sha256": hashlib.sha256(b"ops-key").hexdigest()},
    ]
    return section


def test_401_403_and_the_hashed_key(upstream, tmp_path: Path) -> None:
    up = upstream()
    with run_gateway(keyed(up.v1), tmp_path, {"CI_KEY": KEY}) as gw:
        missing = post(gw, None)
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "authentication_error"
        assert post(gw, "sk-wrong").status_code == 401
        forbidden = post(gw, KEY, model="secret")
        assert (
            forbidden.status_code == 403
            and "may not use route 'secret'" in forbidden.json()["error"]["message"]
        )
        assert post(gw, KEY).status_code == 200
        assert post(gw, "ops-key", model="secret").status_code == 200
        anthropic_style = httpx.post(
            gw.v1 + "/messages",
            headers={"x-api-key": "nope"},
            timeout=10,
            json={"model": "chat", "max_tokens": 4, "messages": MSG},
        )
        assert anthropic_style.status_code == 401
        assert anthropic_style.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid API key"},
        }
        models = httpx.get(gw.v1 + "/models", headers={"authorization": f"Bearer {KEY}"}).json()
        assert [m["id"] for m in models["data"]] == ["chat"]
    text = gw.usage_path.read_text()
    assert KEY not in text and "ops-key" not in text
    assert {r["key"] for r in map(json.loads, text.splitlines())} >= {"ci", "ops"}


def test_rpm_429_with_retry_after(upstream, tmp_path: Path) -> None:
    up = upstream()
    with run_gateway(keyed(up.v1, rpm=3), tmp_path, {"CI_KEY": KEY}) as gw:
        codes = [post(gw, KEY).status_code for _ in range(3)]
        over = post(gw, KEY)
        assert codes == [200, 200, 200]
        assert over.status_code == 429
        assert 1 <= int(over.headers["retry-after"]) <= 60
        assert over.json()["error"]["code"] == "rpm_exceeded"
        assert up.stats()["requests"] == 3
        assert gw.sample("llmops_gateway_ratelimit_rejections_total", key="ci", limit="rpm") == 1


def test_tpm_is_estimated_then_corrected(upstream, tmp_path: Path) -> None:
    up = upstream(tokens=4)
    with run_gateway(keyed(up.v1, tpm=600), tmp_path, {"CI_KEY": KEY}) as gw:
        too_big = post(gw, KEY, max_tokens=1000)
        assert (
            too_big.status_code == 429
            and "more than key 'ci' may use per minute" in too_big.json()["error"]["message"]
        )
        # each request is estimated at ~2 + 300 tokens but really uses ~12: corrected after the call,
        # so far more than two fit in the window.
        codes = [post(gw, KEY, max_tokens=300).status_code for _ in range(6)]
        assert codes == [200] * 6


def test_budget_refuses_with_402(upstream, tmp_path: Path) -> None:
    up = upstream(tokens=4)
    section = keyed(up.v1, budget_usd=0.000001)
    section["routes"][0]["deployments"][0].update(input_per_1m=1000, output_per_1m=1000)
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        assert post(gw, KEY).status_code == 200  # spends ~$0.012
        refused = post(gw, KEY)
        assert refused.status_code == 402
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert gw.sample("llmops_gateway_ratelimit_rejections_total", key="ci", limit="budget") == 1
        assert gw.sample("llm_cost_dollars_total", model="chat") > 0.01


def test_budget_downgrades_when_configured(upstream, tmp_path: Path) -> None:
    up, cheap = upstream(tokens=4), upstream(tokens=4)
    section = keyed(up.v1, budget_usd=0.000001, budget_route="cheap", routes=["chat", "cheap"])
    section["routes"][0]["deployments"][0].update(input_per_1m=1000, output_per_1m=1000)
    section["routes"].append({"name": "cheap", "deployments": [{"url": cheap.v1, "model": "stub-model"}]})
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        assert post(gw, KEY).headers["x-llmops-route"] == "chat"
        second = post(gw, KEY)
        assert second.status_code == 200
        assert second.headers["x-llmops-route"] == "cheap"
        assert second.headers["x-llmops-budget"] == "downgraded"


def test_no_keys_means_loopback_only(tmp_path: Path) -> None:
    import pytest

    from llmops.errors import UsageError
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.server import check_listen

    section = GatewaySection.model_validate(openai_section("http://127.0.0.1:1/v1"))
    check_listen(section, "127.0.0.1", 1)
    with pytest.raises(UsageError, match="no client keys"):
        check_listen(section, "0.0.0.0", 1)
