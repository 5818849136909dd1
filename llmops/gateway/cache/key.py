"""What makes two requests the same: the exact key, and the semantic layer's partition and text.

The exact key is the SHA-256 of canonical JSON (sorted keys, no whitespace) of everything that changes
the answer: the API, the route, the whole message list (system prompt and history included), tools,
response format and every other request field, sampling parameters included. Only fields that cannot
change the reply are left out (`stream`, `stream_options`, `user`, `metadata`, ...): a streamed and a
non-streamed request share an entry, replayed in the form each asked for.

The APIs are kept apart (the API is part of the key): an OpenAI chat request and an Anthropic Messages
request never share an entry, even when they would mean the same thing, because their replies differ
in shape and their defaults (max_tokens, stop sequences) differ in meaning. Within one API the forms
that mean the same are folded: a content given as a string or as one text part, Anthropic's `system`
as a string or as text blocks, `cache_control` markers (a billing hint), `max_completion_tokens` and
the older `max_tokens`.

The semantic layer compares only requests in the same partition: same API, route, parameters, tools,
system prompt and sequence of roles (so the same number of turns); within it, the embedding of the
non-system turns decides, and `sameness` checks the candidate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Request fields that cannot change the reply's content.
NOT_IN_KEY = frozenset(
    {"model", "stream", "stream_options", "user", "metadata", "store", "service_tier", "safety_identifier",
     "prompt_cache_key", "messages", "system", "prompt"}
)  # fmt: skip
SEMANTIC_APIS = ("chat", "messages")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def _content(value: Any) -> Any:
    """A string and a list of one text part mean the same; so do text parts without their billing hints."""
    value = _strip_cache_control(value)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        part = value[0]
        if part.get("type") == "text" and set(part) == {"type", "text"} and isinstance(part["text"], str):
            return part["text"]
    return value


def _messages(api: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if api == "messages" and body.get("system") is not None:
        system = _content(body["system"])
        if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
            system = "\n".join(b.get("text", "") for b in system)
        msgs.append({"role": "system", "content": system})
    for m in body.get("messages") or []:
        m = dict(m)
        if "content" in m:
            m["content"] = _content(m["content"])
        msgs.append(m)
    return msgs


def _params(body: dict[str, Any]) -> dict[str, Any]:
    params = {k: _strip_cache_control(v) for k, v in body.items() if k not in NOT_IN_KEY}
    if "max_completion_tokens" in params and "max_tokens" not in params:
        params["max_tokens"] = params.pop("max_completion_tokens")
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    return params


@dataclass(frozen=True, slots=True)
class Semantic:
    """What the semantic layer needs from a request: where to look and what to compare."""

    partition: str  # hash of api, route, params, system prompt, roles
    texts: tuple[str, ...]  # the non-system turns' text, in order
    text: str  # what is embedded: the turns joined (the tokenizer keeps the end of a long one)


@dataclass(frozen=True, slots=True)
class RequestKey:
    exact: str
    semantic: Semantic | None  # None when the request cannot be compared by meaning (images, tools calls)


def request_key(api: str, route: str, body: dict[str, Any]) -> RequestKey:
    """The exact key and the semantic partition of one client request (the body as the client sent it)."""
    params = _params(body)
    if api == "completions":
        prompt = body.get("prompt")
        return RequestKey(_digest({"api": api, "route": route, "prompt": prompt, "params": params}), None)
    msgs = _messages(api, body)
    exact = _digest({"api": api, "route": route, "messages": msgs, "params": params})
    return RequestKey(exact, _semantic(api, route, params, msgs))


def _semantic(api: str, route: str, params: dict[str, Any], msgs: list[dict[str, Any]]) -> Semantic | None:
    system: list[Any] = []
    texts: list[str] = []
    roles: list[str] = []
    for m in msgs:
        role, content = m.get("role"), m.get("content")
        if role in ("system", "developer"):
            system.append(content)
            continue
        if (
            not isinstance(content, str)
            or set(m) - {"role", "content", "name"}
            or role not in ("user", "assistant")
        ):
            return None  # images, tool calls, tool results: only the exact layer answers these
        roles.append(f"{role}:{m.get('name', '')}")
        texts.append(content)
    if not texts:
        return None
    partition = _digest({"api": api, "route": route, "params": params, "system": system, "roles": roles})
    return Semantic(partition, tuple(texts), "\n".join(texts))


def sampled(body: dict[str, Any]) -> bool:
    """True when the reply is sampled (temperature above 0, or unset: the APIs default to 1)."""
    t = body.get("temperature")
    return not (isinstance(t, int | float) and not isinstance(t, bool) and t <= 0)
