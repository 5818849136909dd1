"""The exact key: everything that changes the answer is in it, nothing else is."""

from __future__ import annotations

import json

import pytest

from llmops.gateway.cache.key import request_key, sampled

BASE = {
    "model": "chat",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What is 2 + 2?"},
    ],
    "temperature": 0,
    "max_tokens": 32,
}


def key(body: dict, api: str = "chat", route: str = "chat") -> str:
    return request_key(api, route, body).exact


def test_key_order_and_json_whitespace_do_not_matter() -> None:
    shuffled = json.loads(json.dumps(dict(reversed(list(BASE.items()))), indent=4))
    assert key(shuffled) == key(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.0001},
        {"top_p": 0.9},
        {"max_tokens": 33},
        {"seed": 7},
        {"stop": ["\n"]},
        {"frequency_penalty": 0.1},
        {"presence_penalty": 0.1},
        {"n": 2},
        {"logprobs": True},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"tool_choice": "none"},
        {"some_future_parameter": 1},  # unknown fields count: the safe default
    ],
)
def test_every_parameter_changes_the_key(change: dict) -> None:
    assert key({**BASE, **change}) != key(BASE)


def test_the_system_prompt_and_every_earlier_turn_change_the_key() -> None:
    for i, text in [(0, "You are verbose."), (1, "Hi!"), (2, "Hello!"), (3, "What is 2 + 3?")]:
        msgs = [dict(m) for m in BASE["messages"]]
        msgs[i]["content"] = text
        assert key({**BASE, "messages": msgs}) != key(BASE), i
    assert key({**BASE, "messages": BASE["messages"][2:]}) != key(BASE)  # same last message, other history


def test_route_and_api_are_in_the_key() -> None:
    assert key(BASE, route="other") != key(BASE)
    anthropic = {
        "model": "chat",
        "system": "You are terse.",
        "messages": BASE["messages"][1:],
        "temperature": 0,
        "max_tokens": 32,
    }
    assert key(anthropic, api="messages") != key(BASE)  # the APIs keep their own entries


def test_forms_that_mean_the_same_share_a_key() -> None:
    parts = {
        **BASE,
        "messages": [
            *BASE["messages"][:3],
            {"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]},
        ],
    }
    assert key(parts) == key(BASE)
    assert key({**BASE, "stream": True, "stream_options": {"include_usage": True}, "user": "u1"}) == key(BASE)
    assert key({**BASE, "model": "chat-alias"}) == key(BASE)  # the route, not the name asked for
    a1 = {
        "model": "c",
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 5,
    }
    a2 = {**a1, "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]}
    assert key(a1, api="messages") == key(a2, api="messages")
    older = {k: v for k, v in BASE.items() if k != "max_tokens"} | {"max_completion_tokens": 32}
    assert key(older) == key(BASE)


def test_semantic_partition_holds_params_system_and_turn_structure() -> None:
    sem = request_key("chat", "chat", BASE).semantic
    assert sem is not None and sem.texts == ("Hi", "Hello.", "What is 2 + 2?")
    other_q = {**BASE, "messages": [*BASE["messages"][:3], {"role": "user", "content": "And 3 + 3?"}]}
    assert request_key("chat", "chat", other_q).semantic.partition == sem.partition
    for change in ({"temperature": 0.5}, {"messages": BASE["messages"][:1] + BASE["messages"][3:]}):
        assert request_key("chat", "chat", {**BASE, **change}).semantic.partition != sem.partition
    system = [{"role": "system", "content": "You are verbose."}, *BASE["messages"][1:]]
    assert request_key("chat", "chat", {**BASE, "messages": system}).semantic.partition != sem.partition
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
    assert request_key("chat", "chat", {**BASE, "messages": [image]}).semantic is None
    assert request_key("completions", "chat", {"model": "c", "prompt": "Hi"}).semantic is None


def test_sampled_means_temperature_above_zero_or_unset() -> None:
    assert sampled({}) and sampled({"temperature": 0.7}) and sampled({"temperature": None})
    assert not sampled({"temperature": 0}) and not sampled({"temperature": 0.0})
