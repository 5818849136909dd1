"""Keys made at run time: create (value shown once, hash stored), list, revoke, rotate with grace, expiry,
the admin key, and three processes on one real redis-server seeing every change within a second."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.gateway.conftest import KEY, gateway_processes, openai_section, run_gateway

MSG = [{"role": "user", "content": "hello"}]
ROOT = Path(__file__).resolve().parents[2]


def _chat(base: str, key: str) -> int:
    r = httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "chat", "messages": MSG, "max_tokens": 2},
        timeout=10,
    )
    return r.status_code


def _admin(base: str, method: str, path: str, body: dict | None = None, key: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    r = httpx.request(method, base + path, json=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_create_list_revoke_rotate_expire_in_a_file(upstream, tmp_path: Path) -> None:
    up = upstream(tokens=2)
    section = openai_section(up.v1, keys=[{"name": "ci", "key_env": "CI_KEY"}])
    with run_gateway(section, tmp_path, {"CI_KEY": KEY}) as gw:
        made = _admin(gw.url, "POST", "/admin/keys", {"name": "team-a", "rpm": 100, "routes": ["chat"]})
        value = made["key"]
        assert value.startswith("sk-llmops-") and made["rpm"] == 100
        assert _chat(gw.url, value) == 200 and _chat(gw.url, KEY) == 200, "config keys keep working"
        stored = (tmp_path / "keys.json").read_text()
        assert value not in stored and json.loads(stored)["keys"][0]["name"] == "team-a"
        listed = _admin(gw.url, "GET", "/admin/keys")
        assert value not in json.dumps(listed)
        rows = {k["name"]: k for k in listed["keys"]}
        assert rows["ci"]["source"] == "config" and rows["team-a"]["last_used"] is not None
        r = httpx.post(gw.url + "/admin/keys", json={"name": "team-a"}, timeout=10)
        assert r.status_code == 400 and "exists" in r.json()["error"]["message"]
        r = httpx.post(gw.url + "/admin/keys", json={"name": "b", "routes": ["nope"]}, timeout=10)
        assert r.status_code == 404 and "unknown route 'nope'" in r.json()["error"]["message"]

        rotated = _admin(gw.url, "POST", "/admin/keys/team-a/rotate", {"grace_s": 1.0})
        new = rotated["key"]
        assert new != value and _chat(gw.url, new) == 200 and _chat(gw.url, value) == 200  # grace
        time.sleep(1.1)
        assert _chat(gw.url, value) == 401 and _chat(gw.url, new) == 200  # grace over

        _admin(gw.url, "POST", "/admin/keys/team-a/revoke")
        assert _chat(gw.url, new) == 401
        r = httpx.post(gw.url + "/admin/keys/ci/revoke", timeout=10)
        assert r.status_code == 400 and "configuration file" in r.json()["error"]["message"]

        short = _admin(gw.url, "POST", "/admin/keys", {"name": "short", "expires_in_s": 0.5})["key"]
        assert _chat(gw.url, short) == 200
        time.sleep(0.6)
        r = httpx.post(
            gw.v1 + "/chat/completions",
            headers={"authorization": f"Bearer {short}"},
            json={"model": "chat", "messages": MSG},
            timeout=10,
        )
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
        assert gw.sample("llmops_gateway_key_operations_total", op="create") == 2
        assert gw.sample("llmops_gateway_key_operations_total", op="rotate") == 1


def test_admin_key_guards_admin_paths_and_cli(upstream, tmp_path: Path) -> None:
    from llmops.cli import app

    up = upstream(tokens=2)
    admin = "adm-0123456789"
    with run_gateway(openai_section(up.v1), tmp_path, {"LLMOPS_GATEWAY_ADMIN_KEY": admin}) as gw:
        r = httpx.get(gw.url + "/admin/keys", timeout=10)
        assert r.status_code == 401 and admin not in r.text
        runner = CliRunner()
        res = runner.invoke(
            app, ["gateway", "keys", "list", "--url", gw.url], env={"LLMOPS_GATEWAY_ADMIN_KEY": ""}
        )
        assert res.exit_code == 2 and "admin key" in res.output
        env = {"LLMOPS_GATEWAY_ADMIN_KEY": admin}
        res = runner.invoke(app, ["gateway", "keys", "create", "ops", "--rpm", "5", "--url", gw.url], env=env)
        assert res.exit_code == 0, res.output
        value = res.stdout.strip().splitlines()[0]
        assert value.startswith("sk-llmops-") and _chat(gw.url, value) == 200
        res = runner.invoke(app, ["gateway", "keys", "list", "--json", "--url", gw.url], env=env)
        assert res.exit_code == 0 and value not in res.output
        assert [k["name"] for k in json.loads(res.stdout)["keys"]] == ["ops"]
        res = runner.invoke(
            app, ["gateway", "keys", "rotate", "ops", "--grace", "0", "--url", gw.url], env=env
        )
        assert res.exit_code == 0 and _chat(gw.url, value) == 401
        res = runner.invoke(app, ["gateway", "keys", "revoke", "nobody", "--url", gw.url], env=env)
        assert res.exit_code == 2 and "no run-time key 'nobody'" in res.output
        res = runner.invoke(
            app, ["gateway", "keys", "create", "x", "--expires", "soon", "--url", gw.url], env=env
        )
        assert res.exit_code == 2 and "--expires 'soon'" in res.output


@pytest.fixture
def three(upstream, flush_redis: str, tmp_path: Path) -> Iterator[list[str]]:
    """Three `llmops gateway` processes on one redis, a config key 'ci' (so keys are required)."""
    up = upstream(tokens=2)
    section = openai_section(up.v1, redis=flush_redis, keys=[{"name": "ci", "key_env": "CI_KEY"}])
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(yaml.safe_dump({"gateway": section}))
    with gateway_processes(cfg, 3, {"CI_KEY": KEY}, tmp_path) as running:
        yield [url for _, url in running]


def _within(seconds: float, urls: list[str], key: str, status: int) -> float:
    """Seconds until every url answers `status` for this key (fails after `seconds`)."""
    t0 = time.monotonic()
    pending = list(urls)
    while pending:
        pending = [u for u in pending if _chat(u, key) != status]
        if pending and time.monotonic() - t0 > seconds:
            pytest.fail(f"{pending} still do not answer {status} after {seconds} s")
        if pending:
            time.sleep(0.02)
    return time.monotonic() - t0


def test_three_replicas_see_create_revoke_rotate_within_a_second(three: list[str]) -> None:
    a, b, c = three
    value = _admin(a, "POST", "/admin/keys", {"name": "shared", "rpm": 1000})["key"]
    assert _within(1.0, [b, c], value, 200) < 1.0
    listed = _admin(c, "GET", "/admin/keys")
    assert listed["store"] == "redis" and "shared" in [k["name"] for k in listed["keys"]]
    rotated = time.monotonic()
    new = _admin(b, "POST", "/admin/keys/shared/rotate", {"grace_s": 4.0})["key"]
    assert _within(1.0, [a, c], new, 200) < 1.0
    assert all(_chat(u, value) == 200 for u in three), "the old value works during the grace"
    assert time.monotonic() - rotated < 4.0
    time.sleep(max(0.0, rotated + 4.0 - time.monotonic()))
    assert _within(1.0, three, value, 401) < 1.0, "and not after it"
    _admin(c, "POST", "/admin/keys/shared/revoke")
    assert _within(1.0, [a, b], new, 401) < 1.0
    assert all(_chat(u, KEY) == 200 for u in three)


def test_reload_all_reaches_every_replica(three: list[str], tmp_path: Path) -> None:
    cfg = tmp_path / "llmops.yaml"
    doc = yaml.safe_load(cfg.read_text())
    dep = dict(doc["gateway"]["routes"][0]["deployments"][0], name="e0")
    doc["gateway"]["routes"].append({"name": "extra", "deployments": [dep]})
    cfg.write_text(yaml.safe_dump(doc))
    out = _admin(three[0], "POST", "/admin/reload", {"all": True})
    assert out["announced_to"] == 2 and out["changes"]["routes"]["added"] == ["extra"]
    t0 = time.monotonic()
    for u in three[1:]:
        while True:
            r = httpx.post(
                u + "/v1/chat/completions",
                headers={"authorization": f"Bearer {KEY}"},
                json={"model": "extra", "messages": MSG},
                timeout=10,
            )
            if r.status_code == 200 or time.monotonic() - t0 > 5:
                break
            time.sleep(0.05)
        assert r.status_code == 200


def test_durations_and_bad_admin_bodies(upstream, tmp_path: Path) -> None:
    from llmops.errors import UsageError
    from llmops.gateway.keys import expiry_s, grace_s

    assert (
        grace_s("10m") == 600
        and grace_s("0") == 0
        and expiry_s("30d") == 30 * 86400
        and expiry_s(None) is None
    )
    with pytest.raises(UsageError):
        grace_s("ten minutes")
    with run_gateway(openai_section(upstream(tokens=2).v1), tmp_path) as gw:
        for body in ({"name": "bad name!"}, {"name": "x", "rpm": 0}, {"name": "x", "rpm": "many"}, {}):
            r = httpx.post(gw.url + "/admin/keys", json=body, timeout=10)
            assert r.status_code == 400, (body, r.text)
        r = httpx.post(gw.url + "/admin/reload", timeout=10)
        assert r.status_code == 400 and "nothing to re-read" in r.json()["error"]["message"]
        r = httpx.post(gw.url + "/admin/nope", timeout=10, headers={"x-forwarded-for": "10.0.0.1"})
        assert r.status_code == 403, "without an admin key, a proxied caller is refused"


def test_k8s_takes_the_admin_key_from_the_secret_when_named() -> None:
    from types import SimpleNamespace

    from llmops.gateway.config import GatewaySection
    from llmops.gateway.k8s import secret_vars
    from llmops.gateway.table import build_table

    for admin, expected in ((None, ["CI_KEY"]), ("GW_ADMIN", ["CI_KEY", "GW_ADMIN"])):
        sec = GatewaySection.model_validate(
            openai_section("http://h:1/v1", keys=[{"name": "ci", "key_env": "CI_KEY"}], admin_key_env=admin)
        )
        assert secret_vars(SimpleNamespace(section=sec, table=build_table(sec))) == expected  # type: ignore[arg-type]


def test_file_store_keeps_every_one_of_concurrent_changes(tmp_path: Path) -> None:
    import asyncio

    from llmops.gateway.keys import FileKeyStore, KeyRecord

    async def run() -> int:
        store = FileKeyStore(tmp_path / "keys.json")
        recs = [KeyRecord(name=f"k{i}", sha256="0" * 64, created_at=0) for i in range(20)]
        await asyncio.gather(*(store.put(r, new=True) for r in recs))
        await asyncio.gather(*(store.delete(f"k{i}") for i in range(0, 20, 2)))
        return len(await store.load())

    assert asyncio.run(run()) == 10
    assert not [p for p in tmp_path.iterdir() if p.name != "keys.json"], "no staged leftovers"
