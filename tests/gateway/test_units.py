"""The pure pieces alone: sliding windows (memory and real Redis alike), breaker counting, translation."""

from __future__ import annotations

import asyncio

import pytest

from llmops.gateway.sse import Framer, events
from llmops.gateway.store import MemoryStore, RedisStore, Window
from llmops.gateway.translate import (
    Assembler,
    ChatToMessagesStream,
    chat_to_messages,
    messages_to_chat,
    replay,
)


def _stores(redis_url: str):
    return [MemoryStore(), RedisStore(redis_url, prefix="unit")]


def test_window_admits_to_the_limit_and_corrects(flush_redis: str) -> None:
    async def run(store) -> None:
        w = Window("k:tpm", 60, 100)
        assert (await store.admit([w], "a")).ok
        refused = await store.admit([Window("k:tpm", 50, 100)], "b")
        assert not refused.ok and refused.refused == 0 and 0 < refused.retry_after_s <= 60
        await store.adjust(Window("k:tpm", 10, 100), "a", 60)  # real usage was 10, not 60
        assert (await store.admit([Window("k:tpm", 50, 100)], "b")).ok
        budget = await store.admit([Window("k:rpm", 1, 5)], "c", ("key:x", 1.0))
        assert budget.ok
        await store.add_spend("key:x", 1.5)
        over = await store.admit([Window("k:rpm", 1, 5)], "d", ("key:x", 1.0))
        assert not over.ok and over.refused == 1
        assert await store.spend("key:x") == pytest.approx(1.5)
        await store.close()

    for store in _stores(flush_redis):
        asyncio.run(run(store))


def test_window_slides(flush_redis: str) -> None:
    async def run(store) -> None:
        assert (await store.admit([Window("s", 1, 1, window_s=0.3)], "a")).ok
        assert not (await store.admit([Window("s", 1, 1, window_s=0.3)], "b")).ok
        await asyncio.sleep(0.35)
        assert (await store.admit([Window("s", 1, 1, window_s=0.3)], "c")).ok
        await store.close()

    for store in _stores(flush_redis):
        asyncio.run(run(store))


def test_breaker_counts_consecutive_failures_and_ratio(flush_redis: str) -> None:
    async def run(store) -> None:
        kw = {"failures": 3, "ratio": None, "window_s": 30, "min_requests": 10, "cooldown_s": 5}
        assert not (await store.record_result("d", 0, True, **kw)).tripped
        assert not (await store.record_result("d", 2, True, **kw)).tripped  # successes reset the run
        assert not (await store.record_result("d", 0, True, **kw)).tripped
        tripped = await store.record_result("d", 0, True, **kw)
        assert tripped.tripped
        assert "d" in await store.cooldowns(["d", "e"])
        ratio = {**kw, "failures": 100, "ratio": 0.5, "min_requests": 4}
        assert not (await store.record_result("e", 2, True, **ratio)).tripped
        assert (await store.record_result("e", 0, True, **ratio)).tripped  # 2 of 4 failed
        await store.close()

    for store in _stores(flush_redis):
        asyncio.run(run(store))


def test_framer_holds_partial_events() -> None:
    f = Framer()
    assert f.feed(b'data: {"a":') == b""
    assert f.feed(b" 1}\n\ndata: [DO") == b'data: {"a": 1}\n\n'
    assert f.feed(b"NE]\r\n\r\n") == b"data: [DONE]\n\n"
    assert list(events(b"event: x\ndata: 1\n\n: comment\n\ndata: 2\n\n")) == [("x", b"1"), (None, b"2")]


def test_messages_request_to_chat_and_back() -> None:
    body = {
        "model": "r",
        "max_tokens": 9,
        "system": [{"type": "text", "text": "sys"}],
        "stop_sequences": ["END"],
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]},
        ],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "stream": True,
    }
    chat = messages_to_chat(body, "m")
    assert chat["messages"][0] == {"role": "system", "content": "sys"}
    assert chat["messages"][2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x": 1}'}
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "42"}
    assert chat["stop"] == ["END"] and chat["tool_choice"] == "required"
    assert chat["stream_options"] == {"include_usage": True}
    back = chat_to_messages({"model": "x", "messages": chat["messages"], "max_tokens": 9}, "claude")
    assert back["system"] == "sys"
    assert back["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "t1",
        "name": "f",
        "input": {"x": 1},
    }
    assert back["messages"][2]["content"][0]["type"] == "tool_result"


def test_chat_stream_becomes_anthropic_events() -> None:
    conv = ChatToMessagesStream("route")
    out = conv.chunk({"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    out += conv.chunk({"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    out += conv.chunk({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    out += conv.chunk({"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})
    out += conv.end()
    names = [n for n, _ in events(out)]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    asm = Assembler("messages")
    for n, d in events(out):
        asm.feed(n, d)
    msg = asm.result()
    assert msg["content"] == [{"type": "text", "text": "Hi"}]
    assert msg["stop_reason"] == "max_tokens" and msg["usage"]["output_tokens"] == 1


@pytest.mark.parametrize("api", ["chat", "completions", "messages"])
def test_replay_then_assemble_round_trips(api: str) -> None:
    if api == "messages":
        doc = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "r",
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "content": [{"type": "text", "text": "hello"}],
            "usage": {"input_tokens": 3, "output_tokens": 1},
        }
    elif api == "chat":
        doc = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "r",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello"},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    else:
        doc = {
            "id": "c",
            "object": "text_completion",
            "created": 1,
            "model": "r",
            "choices": [{"index": 0, "text": "hello", "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    asm = Assembler(api)
    for n, d in events(replay(api, doc)):
        asm.feed(n, d)
    got = asm.result()
    if api == "messages":
        assert got["content"] == doc["content"] and got["usage"]["output_tokens"] == 1
    else:
        assert got["choices"] == doc["choices"] and got["usage"] == doc["usage"]


def test_cost_uses_the_providers_cached_price() -> None:
    from llmops.gateway.config import DeploymentConfig
    from llmops.gateway.table import resolve_deployment
    from llmops.profiles.loader import Catalog

    dep = resolve_deployment(
        DeploymentConfig(provider="openai", model="gpt-4o-mini"), "r", Catalog.discover()
    )
    assert dep.api_key_env == "OPENAI_API_KEY" and dep.base_url == "https://api.openai.com/v1"
    # 1M input of which 400k cached, 100k output: 0.6M x 0.15 + 0.4M x 0.075 + 0.1M x 0.60
    assert dep.cost(1_000_000, 100_000, cached_tokens=400_000) == pytest.approx(0.09 + 0.03 + 0.06)
    claude = resolve_deployment(
        DeploymentConfig(provider="anthropic", model="claude-haiku-4-5"), "r", Catalog.discover()
    )
    assert (
        claude.api == "anthropic" and claude.url_for("/messages") == "https://api.anthropic.com/v1/messages"
    )
