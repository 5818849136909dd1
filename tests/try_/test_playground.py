"""The playground page, served by a real gateway process, in a real headless Chromium (Debian's, driven
by selenium): it loads, asks for the client key, streams text from a local server through the gateway,
and Stop cancels the stream upstream. A screenshot is kept as the test's artifact."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmops.bench.fake_server import spawn
from llmops.playground import meta
from llmops.sampling.presets import PRESETS

KEY = "sk-playground-test-0123456789"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _section(upstream: str, playground: bool) -> dict:
    return {
        "playground": playground,
        "keys": [{"name": "web", "key_env": "LLMOPS_GATEWAY_KEY_WEB"}],
        "routes": [
            {"name": "chat", "deployments": [{"url": upstream + "/v1", "model": "stub", "name": "fake"}]}
        ],
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(gateway URL, upstream URL): `llmops gateway` as a subprocess, playground on, in front of a fake
    server that streams 'tok ' every 40 ms (long enough to press Stop halfway)."""
    import yaml

    upstream, up_url = spawn(30, 40)
    port = _free_port()
    folder = tmp_path_factory.mktemp("gateway")
    (folder / "llmops.yaml").write_text(yaml.safe_dump({"gateway": {**_section(up_url, True), "port": port}}))
    env = {**os.environ, "LLMOPS_GATEWAY_KEY_WEB": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "gateway"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "gateway.log", "w"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gateway did not start: " + (folder / "gateway.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url, up_url
    finally:
        for p in (proc, upstream):
            p.terminate()
            p.wait(10)


def _running_upstream_requests(up_url: str) -> float:
    text = httpx.get(up_url + "/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("vllm:num_requests_running"))
    return float(line.rsplit(" ", 1)[1])


def test_page_streams_through_the_gateway_and_stop_cancels_upstream(
    gateway: tuple[str, str], browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, up_url = gateway
    d = browser
    wait = WebDriverWait(d, 20)
    d.get(url + "/playground")  # type: ignore[attr-defined]
    assert d.title == "llmops playground"  # type: ignore[attr-defined]
    # No key yet: the gateway answers 401 and the page asks for one.
    wait.until(lambda d: "client key" in d.find_element(By.ID, "notice").text)
    d.find_element(By.ID, "key").send_keys(KEY)  # type: ignore[attr-defined]
    d.find_element(By.ID, "key-save").click()  # type: ignore[attr-defined]
    wait.until(lambda d: [o.text for o in d.find_elements(By.CSS_SELECTOR, "#route option")] == ["chat"])

    # A preset fills the controls from llmops.sampling's table.
    d.find_element(By.CSS_SELECTOR, "#presets button[data-name=assistant]").click()  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "p-temperature").get_attribute("value") == "0.7"  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "p-top_p").get_attribute("value") == "0.9"  # type: ignore[attr-defined]
    # An out-of-range value is refused before anything is sent.
    top_p = d.find_element(By.ID, "p-top_p")  # type: ignore[attr-defined]
    top_p.clear()
    top_p.send_keys("1.5")
    assert "must be in (0, 1]" in d.find_element(By.ID, "why-top_p").text  # type: ignore[attr-defined]
    assert not d.find_element(By.ID, "run").is_enabled()  # type: ignore[attr-defined]
    top_p.clear()
    top_p.send_keys("0.9")

    d.find_element(By.ID, "p-max_tokens").send_keys("400")  # type: ignore[attr-defined]  # 16 s of tokens
    d.find_element(By.ID, "system").send_keys("You are a concise assistant.")  # type: ignore[attr-defined]
    d.find_element(By.ID, "prompt").send_keys("Count slowly, please.")  # type: ignore[attr-defined]
    d.find_element(By.ID, "run").click()  # type: ignore[attr-defined]

    # Text streams into the page with live figures, and the gateway's headers come through.
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".answer").text.count("tok") >= 10)
    live = d.find_element(By.CSS_SELECTOR, ".stats").text  # type: ignore[attr-defined]
    assert "TTFT" in live and "tok/s" in live
    assert _running_upstream_requests(up_url) == 1
    d.find_element(By.ID, "stop").click()  # type: ignore[attr-defined]
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".column").get_attribute("data-state") == "stopped")
    answer = d.find_element(By.CSS_SELECTOR, ".answer").text  # type: ignore[attr-defined]
    meta_text = d.find_element(By.CSS_SELECTOR, ".meta").text  # type: ignore[attr-defined]
    assert 10 <= answer.count("tok") < 400  # the partial answer stays on the page
    assert "stopped" in meta_text and "route chat" in meta_text and "deployment fake" in meta_text
    # Stop closed the connection; the gateway cancelled the upstream request, whose slot is free again.
    deadline = time.monotonic() + 3
    while _running_upstream_requests(up_url) != 0:
        assert time.monotonic() < deadline, "the upstream request was not cancelled"
        time.sleep(0.05)
    assert d.find_element(By.ID, "run").is_enabled()  # type: ignore[attr-defined]
    d.execute_script("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    stopped_shot = tmp_path / "playground-stopped.png"
    assert d.save_screenshot(str(stopped_shot))  # type: ignore[attr-defined]

    # Compare: two settings side by side, each streaming to its end.
    d.find_element(By.ID, "p-max_tokens").clear()  # type: ignore[attr-defined]
    d.find_element(By.ID, "p-max_tokens").send_keys("12")  # type: ignore[attr-defined]
    from selenium.webdriver.support.ui import Select

    Select(d.find_element(By.ID, "compare-param")).select_by_value("temperature")  # type: ignore[attr-defined]
    d.find_element(By.ID, "compare-values").send_keys("0, 1.2")  # type: ignore[attr-defined]
    d.find_element(By.ID, "run").click()  # type: ignore[attr-defined]
    wait.until(
        lambda d: (
            [c.get_attribute("data-state") for c in d.find_elements(By.CSS_SELECTOR, ".column")]
            == ["done", "done"]
        )
    )
    labels = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".column .label")]  # type: ignore[attr-defined]
    assert labels == ["temperature=0", "temperature=1.2"]
    assert all(e.text.count("tok") == 12 for e in d.find_elements(By.CSS_SELECTOR, ".answer"))  # type: ignore[attr-defined]

    d.execute_script("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    shot = tmp_path / "playground.png"
    assert d.save_screenshot(str(shot))  # type: ignore[attr-defined]
    print(f"\nplayground screenshots: {stopped_shot} {shot}")
    assert shot.stat().st_size > 10_000 and stopped_shot.stat().st_size > 10_000


# Each field's placeholder against the room its text has (the content box, less the spin buttons that
# Chromium draws inside a number field), measured in the field's own font.
PLACEHOLDER_ROOM = """
const canvas = document.createElement('canvas').getContext('2d');
return [...document.querySelectorAll('#params input[placeholder]')].map(el => {
  const cs = getComputedStyle(el);
  canvas.font = cs.font;
  const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)
    - (el.type === 'number' ? 16 : 0);
  return {id: el.id, placeholder: el.placeholder, text: canvas.measureText(el.placeholder).width, room: room};
});
"""


def test_every_parameter_field_shows_its_whole_placeholder(gateway: tuple[str, str], browser: object) -> None:
    """Issue 19: the number fields beside a slider cut their placeholder to `defau`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = gateway
    d = browser
    d.get(url + "/playground")  # type: ignore[attr-defined]
    WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "p-temperature"))
    fields = d.execute_script(PLACEHOLDER_ROOM)  # type: ignore[attr-defined]
    assert {f["id"] for f in fields} >= {"p-temperature", "p-top_p", "p-max_tokens"}
    cut = [f for f in fields if f["text"] > f["room"]]
    assert cut == [], cut


def test_meta_json_is_the_sampling_table() -> None:
    doc = meta()
    names = [p["name"] for p in doc["params"]]
    assert names[:2] == ["temperature", "top_p"] and "repetition_penalty" in names
    assert {p["name"]: p["values"] for p in doc["presets"]} == {k: v.values for k, v in PRESETS.items()}
    assert doc["bands"] == {"high": 0.8, "low": 0.5} and "preset" in doc["comparable"]


def test_playground_is_off_unless_the_section_turns_it_on(tmp_path: Path) -> None:
    from llmops.gateway.app import create_app
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.pipeline import Gateway
    from llmops.gateway.table import build_table

    async def get(app: object, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict] = []

        async def send(msg: dict) -> None:
            sent.append(msg)

        async def receive() -> dict:
            return {"type": "http.disconnect"}

        scope = {"type": "http", "method": "GET", "path": path, "headers": []}
        await app(scope, receive, send)  # type: ignore[operator]
        return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    for on in (False, True):
        sec = GatewaySection.model_validate(_section("http://127.0.0.1:9", on))
        env = {"LLMOPS_GATEWAY_KEY_WEB": KEY}
        app = create_app(Gateway(sec, build_table(sec, None), environ=env, usage_path=tmp_path / "u.jsonl"))
        status, headers, body = asyncio.run(get(app, "/playground"))
        if not on:
            assert status == 404
            continue
        assert status == 200 and b"<title>llmops playground</title>" in body
        assert headers[b"content-security-policy"].startswith(b"default-src 'self'")
        for path in ("/playground/playground.js", "/playground/playground.css", "/playground/meta.json"):
            assert asyncio.run(get(app, path))[0] == 200
        assert asyncio.run(get(app, "/playground/nope.js"))[0] == 404
        # Nothing in the page is fetched from another origin (it works offline).
        for name in ("index.html", "playground.js", "playground.css"):
            text = (Path(__file__).parents[2] / "llmops" / "playground" / "static" / name).read_text()
            assert "http://" not in text and "https://" not in text
