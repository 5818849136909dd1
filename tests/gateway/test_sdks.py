"""The issue's example config, verbatim, with the official openai and anthropic SDKs, streaming and not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.conftest import KEY, run_gateway

EXAMPLE = """
gateway:
  port: 4000
  keys:
    - name: ci
      key_env: LLMOPS_GATEWAY_KEY_CI   # the client key's value lives in this variable (or key_sha256: ...)
      rpm: 60
      tpm: 100000
      budget_usd: 5
  routes:
    - name: chat                         # what clients put in "model"
      deployments:
        - url: http://127.0.0.1:8001/v1  # any OpenAI-compatible server
          model: stub-model
        - url: http://127.0.0.1:8002/v1
          model: stub-model
      fallbacks: [backup]
    - name: backup
      deployments:
        - url: http://127.0.0.1:8003/v1
          model: stub-model
"""


@pytest.fixture
def example(upstream, tmp_path: Path):
    """The example verbatim through the workspace loader; its three ports swapped for free ones."""
    from llmops.gateway.config import gateway_section
    from llmops.workspace import load_workspace

    ups = [upstream(ttft_ms=5, gap_ms=1, tokens=4) for _ in range(3)]
    text = EXAMPLE
    for port, u in zip(("8001", "8002", "8003"), ups, strict=True):
        text = text.replace(f"127.0.0.1:{port}", u.base.removeprefix("http://"))
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(text)
    section = gateway_section(load_workspace(cfg)).model_dump(exclude_none=True)
    env = {"LLMOPS_GATEWAY_KEY_CI": KEY}
    with run_gateway(section, tmp_path, env) as gw:
        yield gw, ups


def test_example_is_valid_verbatim(tmp_path: Path) -> None:
    from llmops.gateway.config import gateway_section
    from llmops.workspace import load_workspace

    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(EXAMPLE)
    gw = gateway_section(load_workspace(cfg))
    assert [r.name for r in gw.routes] == ["chat", "backup"]
    assert gw.keys[0].rpm == 60


def test_openai_sdk_plain_and_streaming(example) -> None:
    import openai

    gw, _ = example
    client = openai.OpenAI(base_url=gw.v1, api_key=KEY)
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    assert raw.headers["x-llmops-route"] == "chat"
    assert raw.headers["x-llmops-deployment"].startswith("stub-model@http://127.0.0.1:")
    assert float(raw.headers["x-llmops-overhead-ms"]) >= 0
    reply = raw.parse()
    assert reply.choices[0].message.content == "tok tok tok tok "
    assert reply.usage.completion_tokens == 4
    chunks = list(
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hello"}], max_tokens=4, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok tok tok tok "
    assert all(c.choices for c in chunks), "the usage chunk the gateway asked for must not reach this client"
    with_usage = list(
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].usage.completion_tokens == 4
    completion = client.completions.create(model="chat", prompt="say", max_tokens=4)
    assert completion.choices[0].text == "tok tok tok tok "


def test_anthropic_sdk_plain_and_streaming(example) -> None:
    import anthropic

    gw, _ = example
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY)
    raw = client.messages.with_raw_response.create(
        model="chat", max_tokens=4, messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.headers["x-llmops-route"] == "chat"
    msg = raw.parse()
    assert msg.content[0].text == "tok tok tok tok "
    assert msg.usage.output_tokens == 4 and msg.usage.input_tokens > 0
    with client.messages.stream(
        model="chat", max_tokens=4, system="be brief", messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok tok tok tok "
    assert final.usage.output_tokens == 4


def test_fallback_keeps_the_messages_unchanged(example) -> None:
    import openai

    gw, ups = example
    ups[0].kill()
    ups[1].kill()
    client = openai.OpenAI(base_url=gw.v1, api_key=KEY, max_retries=0)
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=messages, max_tokens=4)
    assert raw.headers["x-llmops-route"] == "backup"
    assert raw.headers["x-llmops-deployment"] == f"stub-model@{ups[2].v1}"
    assert ups[2].stats()["bodies"][-1]["messages"] == messages
    assert gw.sample("llmops_gateway_fallbacks_total", route="chat", to="backup") == 1
    assert (
        gw.sample(
            "llmops_gateway_deployment_failures_total",
            route="chat",
            deployment=f"stub-model@{ups[0].v1}",
            reason="connect",
        )
        >= 1
    )
