"""Anthropic Messages <-> OpenAI chat completions: requests, responses and streams, both ways.

Used when a client's API and a deployment's API differ: `/v1/messages` in front of an OpenAI-compatible
server, or `/v1/chat/completions` in front of the Anthropic provider. The client's messages are carried
over as they are (no injected turns); what one API cannot express is refused with a 400, not dropped.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from llmops.gateway.errors import GatewayError
from llmops.gateway.sse import DONE, data_event, named_event
from llmops.gateway.stages import Usage

DEFAULT_ANTHROPIC_MAX_TOKENS = 4096
_STOP_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}
_STOP_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def _bad(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param)


# --- requests ----------------------------------------------------------------------------------


def _text_of(blocks: Any, where: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if isinstance(blocks, list):
        parts = []
        for b in blocks:
            if isinstance(b, dict) and b.get("type") == "text":
                parts.append(str(b.get("text", "")))
            else:
                raise _bad(f"{where}: only text blocks can be translated here", where)
        return "\n".join(parts)
    raise _bad(f"{where}: expected a string or a list of blocks", where)


def _image_url(block: dict[str, Any]) -> dict[str, Any]:
    src = block.get("source") or {}
    if src.get("type") == "base64":
        url = f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"
    elif src.get("type") == "url":
        url = src.get("url", "")
    else:
        raise _bad("image source must be base64 or url", "messages")
    return {"type": "image_url", "image_url": {"url": url}}


def messages_to_chat(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI chat completions request."""
    out: list[dict[str, Any]] = []
    if body.get("system") is not None:
        out.append({"role": "system", "content": _text_of(body["system"], "system")})
    for i, m in enumerate(body["messages"]):
        role, content = m.get("role"), m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise _bad(f"messages.{i}.content: expected a string or a list of blocks", "messages")
        parts: list[dict[str, Any]] = []
        tool_calls: list[dict[str, Any]] = []
        for b in content:
            kind = b.get("type") if isinstance(b, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": b.get("text", "")})
            elif kind == "image":
                parts.append(_image_url(b))
            elif kind == "tool_use":
                tool_calls.append(
                    {
                        "id": b.get("id"),
                        "type": "function",
                        "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input", {}))},
                    }
                )
            elif kind == "tool_result":
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": b.get("tool_use_id"),
                        "content": _text_of(b.get("content", ""), f"messages.{i}.content.tool_result"),
                    }
                )
            else:
                raise _bad(f"messages.{i}.content: block type {kind!r} cannot be translated", "messages")
        if parts or tool_calls:
            msg: dict[str, Any] = {"role": role}
            if all(p["type"] == "text" for p in parts):
                msg["content"] = "".join(p["text"] for p in parts) if parts else None
            else:
                msg["content"] = parts
            if tool_calls:
                msg["tool_calls"] = tool_calls
            out.append(msg)
    req: dict[str, Any] = {"model": model, "messages": out, "max_tokens": body["max_tokens"]}
    for k in ("temperature", "top_p", "top_k"):
        if body.get(k) is not None:
            req[k] = body[k]
    if body.get("stop_sequences"):
        req["stop"] = body["stop_sequences"]
    if body.get("tools"):
        req["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.get("name"),
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema", {"type": "object"}),
                },
            }
            for t in body["tools"]
        ]
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        req["tool_choice"] = {
            "auto": "auto",
            "any": "required",
            "none": "none",
            "tool": {"type": "function", "function": {"name": tc.get("name")}},
        }.get(tc.get("type"), "auto")
    if isinstance(body.get("metadata"), dict) and body["metadata"].get("user_id"):
        req["user"] = body["metadata"]["user_id"]
    if body.get("stream"):
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
    return req


def chat_to_messages(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completions request as an Anthropic Messages request."""
    if (body.get("n") or 1) > 1:
        raise _bad("n > 1 is not available on an Anthropic deployment", "n")
    system: list[str] = []
    msgs: list[dict[str, Any]] = []
    for i, m in enumerate(body["messages"]):
        role, content = m.get("role"), m.get("content")
        if role in ("system", "developer"):
            system.append(_chat_text(content, i))
        elif role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.get("tool_call_id"),
                "content": _chat_text(content, i),
            }
            msgs.append({"role": "user", "content": [block]})
        elif role in ("user", "assistant"):
            blocks: list[dict[str, Any]] = []
            if isinstance(content, str):
                if content:
                    blocks.append({"type": "text", "text": content})
            elif isinstance(content, list):
                for p in content:
                    if p.get("type") == "text":
                        blocks.append({"type": "text", "text": p.get("text", "")})
                    elif p.get("type") == "image_url":
                        blocks.append(_image_block(p, i))
                    else:
                        raise _bad(f"messages.{i}.content: part type {p.get('type')!r} cannot be translated")
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError as exc:
                    raise _bad(f"messages.{i}.tool_calls: arguments are not JSON") from exc
                blocks.append({"type": "tool_use", "id": tc.get("id"), "name": fn.get("name"), "input": args})
            msgs.append({"role": role, "content": blocks})
        else:
            raise _bad(f"messages.{i}.role: {role!r} is not a chat role", "messages")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_ANTHROPIC_MAX_TOKENS
    req: dict[str, Any] = {"model": model, "messages": msgs, "max_tokens": max_tokens}
    if system:
        req["system"] = "\n\n".join(system)
    for k in ("temperature", "top_p", "top_k"):
        if body.get(k) is not None:
            req[k] = body[k]
    stop = body.get("stop")
    if stop:
        req["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        req["tools"] = [
            {
                "name": t["function"].get("name"),
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object"},
            }
            for t in body["tools"]
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
    tc = body.get("tool_choice")
    if tc == "required":
        req["tool_choice"] = {"type": "any"}
    elif tc in ("auto", "none"):
        req["tool_choice"] = {"type": tc}
    elif isinstance(tc, dict) and isinstance(tc.get("function"), dict):
        req["tool_choice"] = {"type": "tool", "name": tc["function"].get("name")}
    if body.get("user"):
        req["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        req["stream"] = True
    return req


def _chat_text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if content is None:
        return ""
    raise _bad(f"messages.{i}.content: expected a string or a list of parts", "messages")


def _image_block(part: dict[str, Any], i: int) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


# --- complete responses ------------------------------------------------------------------------


def usage_from_openai(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0), int(cached), True)


def usage_from_responses(u: Any) -> Usage:
    """Usage of the Responses API: input_tokens / output_tokens, cached in input_tokens_details."""
    if not isinstance(u, dict):
        return Usage()
    cached = (u.get("input_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0), int(cached), True)


def usage_from_anthropic(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    cached = int(u.get("cache_read_input_tokens") or 0)
    created = int(u.get("cache_creation_input_tokens") or 0)
    fresh = int(u.get("input_tokens") or 0)
    return Usage(fresh + cached + created, int(u.get("output_tokens") or 0), cached, True)


def chat_response_to_message(doc: dict[str, Any], model: str) -> dict[str, Any]:
    choice = (doc.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if msg.get("content"):
        content.append({"type": "text", "text": msg["content"]})
    for tc in msg.get("tool_calls") or []:
        fn = tc.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            args = {"_raw": fn.get("arguments")}
        content.append({"type": "tool_use", "id": tc.get("id"), "name": fn.get("name"), "input": args})
    u = usage_from_openai(doc.get("usage"))
    usage: dict[str, Any] = {
        "input_tokens": u.input_tokens - u.cached_tokens,
        "output_tokens": u.output_tokens,
    }
    if u.cached_tokens:
        usage["cache_read_input_tokens"] = u.cached_tokens
    return {
        "id": "msg_" + str(doc.get("id") or uuid.uuid4().hex),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP_TO_ANTHROPIC.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage,
    }


def message_to_chat_response(doc: dict[str, Any], model: str) -> dict[str, Any]:
    text = "".join(b.get("text", "") for b in doc.get("content") or [] if b.get("type") == "text")
    tool_calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input", {}))},
        }
        for b in doc.get("content") or []
        if b.get("type") == "tool_use"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if tool_calls else "")}
    if tool_calls:
        message["tool_calls"] = tool_calls
    u = usage_from_anthropic(doc.get("usage"))
    return {
        "id": "chatcmpl-" + str(doc.get("id") or uuid.uuid4().hex),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _STOP_TO_OPENAI.get(doc.get("stop_reason") or "end_turn", "stop"),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(u),
    }


def openai_usage(u: Usage) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        doc["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    return doc


# --- streams -----------------------------------------------------------------------------------


class ChatToMessagesStream:
    """OpenAI chat chunks in, Anthropic Messages stream events out."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.block: str | None = None  # "text" or "tool_use": the open content block
        self.index = -1
        self.tools: dict[int, int] = {}  # OpenAI tool_call index -> Anthropic block index
        self.stop_reason = "end_turn"
        self.usage = Usage()
        self.finished = False

    def _start(self, chunk_id: str) -> bytes:
        self.started = True
        msg = {
            "id": "msg_" + (chunk_id or uuid.uuid4().hex),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return named_event("message_start", {"type": "message_start", "message": msg})

    def _close_block(self) -> bytes:
        if self.block is None:
            return b""
        self.block = None
        return named_event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def chunk(self, doc: dict[str, Any]) -> bytes:
        out = b"" if self.started else self._start(str(doc.get("id") or ""))
        if doc.get("usage"):
            self.usage = usage_from_openai(doc["usage"])
        for choice in doc.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self.block != "text":
                    out += self._close_block()
                    self.index += 1
                    self.block = "text"
                    out += named_event(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": self.index,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                out += named_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self.index,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
            for tc in delta.get("tool_calls") or []:
                ti = tc.get("index", 0)
                fn = tc.get("function") or {}
                if ti not in self.tools:
                    out += self._close_block()
                    self.index += 1
                    self.tools[ti] = self.index
                    self.block = "tool_use"
                    block = {
                        "type": "tool_use",
                        "id": tc.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                        "name": fn.get("name") or "",
                        "input": {},
                    }
                    out += named_event(
                        "content_block_start",
                        {"type": "content_block_start", "index": self.index, "content_block": block},
                    )
                if fn.get("arguments"):
                    out += named_event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": self.tools[ti],
                            "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]},
                        },
                    )
            if choice.get("finish_reason"):
                self.stop_reason = _STOP_TO_ANTHROPIC.get(choice["finish_reason"], "end_turn")
        return out

    def end(self) -> bytes:
        """The closing events, once the upstream said [DONE]."""
        out = b"" if self.started else self._start("")
        out += self._close_block()
        usage = {
            "input_tokens": self.usage.input_tokens - self.usage.cached_tokens,
            "output_tokens": self.usage.output_tokens,
        }
        if self.usage.cached_tokens:
            usage["cache_read_input_tokens"] = self.usage.cached_tokens
        out += named_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                "usage": usage,
            },
        )
        self.finished = True
        return out + named_event("message_stop", {"type": "message_stop"})


class MessagesToChatStream:
    """Anthropic Messages stream events in, OpenAI chat chunks out."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.usage = Usage()
        self.tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_call index
        self.finished = False
        self.error: dict[str, Any] | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return data_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
        )

    def event(self, name: str | None, doc: dict[str, Any]) -> bytes:
        kind = doc.get("type") or name
        if kind == "message_start":
            msg = doc.get("message") or {}
            self.usage = usage_from_anthropic(msg.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") == "tool_use":
                ti = self.tools[doc.get("index", 0)] = len(self.tools)
                call = {
                    "index": ti,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return self._chunk({"tool_calls": [call]})
            if block.get("text"):
                return self._chunk({"content": block["text"]})
            return b""
        if kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._chunk({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta":
                ti = self.tools.get(doc.get("index", 0), 0)
                return self._chunk(
                    {"tool_calls": [{"index": ti, "function": {"arguments": delta.get("partial_json", "")}}]}
                )
            return b""
        if kind == "message_delta":
            u = doc.get("usage") or {}
            if u.get("output_tokens") is not None:
                self.usage.output_tokens = int(u["output_tokens"])
                self.usage.reported = True
            if u.get("input_tokens") is not None:
                self.usage.input_tokens = int(u["input_tokens"]) + self.usage.cached_tokens
            reason = (doc.get("delta") or {}).get("stop_reason")
            return self._chunk({}, _STOP_TO_OPENAI.get(reason or "end_turn", "stop")) if reason else b""
        if kind == "message_stop":
            self.finished = True
            out = b""
            if self.include_usage:
                out += data_event(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": openai_usage(self.usage),
                    }
                )
            return out + DONE
        if kind == "error":
            self.error = doc.get("error") or {}
        return b""


# --- replaying a complete response as a stream (cache hits) and assembling a stream (cache stores) -----


def replay(api: str, doc: dict[str, Any], include_usage: bool = True) -> bytes:
    """A complete response in the client's format as the stream the client would have received."""
    if api == "messages":
        conv = ChatToMessagesStream(doc.get("model", ""))
        out = conv._start(str(doc.get("id", "")).removeprefix("msg_"))
        for i, block in enumerate(doc.get("content") or []):
            if block.get("type") == "text":
                out += named_event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                out += named_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "text_delta", "text": block.get("text", "")},
                    },
                )
            elif block.get("type") == "tool_use":
                out += named_event(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}},
                )
                out += named_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block.get("input", {})),
                        },
                    },
                )
            out += named_event("content_block_stop", {"type": "content_block_stop", "index": i})
        out += named_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": doc.get("stop_reason"), "stop_sequence": doc.get("stop_sequence")},
                "usage": doc.get("usage") or {},
            },
        )
        return out + named_event("message_stop", {"type": "message_stop"})
    base = {
        "id": doc.get("id", ""),
        "created": doc.get("created", int(time.time())),
        "model": doc.get("model", ""),
    }
    out = b""
    if api == "chat":
        base["object"] = "chat.completion.chunk"
        for c in doc.get("choices") or []:
            msg = c.get("message") or {}
            delta: dict[str, Any] = {"role": "assistant", "content": msg.get("content") or ""}
            if msg.get("tool_calls"):
                delta["tool_calls"] = [{"index": j, **tc} for j, tc in enumerate(msg["tool_calls"])]
            out += data_event(
                {**base, "choices": [{"index": c.get("index", 0), "delta": delta, "finish_reason": None}]}
            )
            out += data_event(
                {
                    **base,
                    "choices": [
                        {"index": c.get("index", 0), "delta": {}, "finish_reason": c.get("finish_reason")}
                    ],
                }
            )
    else:
        base["object"] = "text_completion"
        for c in doc.get("choices") or []:
            out += data_event(
                {
                    **base,
                    "choices": [
                        {
                            "index": c.get("index", 0),
                            "text": c.get("text", ""),
                            "logprobs": None,
                            "finish_reason": c.get("finish_reason"),
                        }
                    ],
                }
            )
    if include_usage and doc.get("usage"):
        out += data_event({**base, "choices": [], "usage": doc["usage"]})
    return out + DONE


class Assembler:
    """Rebuilds the complete response from the client-format stream (only when a stage asked for it)."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.doc: dict[str, Any] = {}
        self.texts: dict[int, list[str]] = {}
        self.finish: dict[int, Any] = {}
        self.tools: dict[int, dict[int, dict[str, Any]]] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial: dict[int, list[str]] = {}

    def feed(self, name: str | None, data: bytes) -> None:
        if data == b"[DONE]":
            return
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if self.api == "messages":
            self._anthropic(doc)
            return
        for k in ("id", "created", "model", "system_fingerprint"):
            if k in doc and k not in self.doc:
                self.doc[k] = doc[k]
        if doc.get("usage"):
            self.doc["usage"] = doc["usage"]
        for c in doc.get("choices") or []:
            i = c.get("index", 0)
            if self.api == "chat":
                d = c.get("delta") or {}
                if d.get("content"):
                    self.texts.setdefault(i, []).append(d["content"])
                for tc in d.get("tool_calls") or []:
                    slot = self.tools.setdefault(i, {}).setdefault(
                        tc.get("index", 0),
                        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                    )
                    slot["id"] = tc.get("id") or slot["id"]
                    fn = tc.get("function") or {}
                    slot["function"]["name"] += fn.get("name") or ""
                    slot["function"]["arguments"] += fn.get("arguments") or ""
            elif c.get("text"):
                self.texts.setdefault(i, []).append(c["text"])
            if c.get("finish_reason"):
                self.finish[i] = c["finish_reason"]

    def _anthropic(self, doc: dict[str, Any]) -> None:
        kind = doc.get("type")
        if kind == "message_start":
            self.doc = dict(doc.get("message") or {})
        elif kind == "content_block_start":
            self.blocks[doc.get("index", 0)] = dict(doc.get("content_block") or {})
        elif kind == "content_block_delta":
            i, d = doc.get("index", 0), doc.get("delta") or {}
            block = self.blocks.setdefault(i, {"type": "text", "text": ""})
            if d.get("type") == "text_delta":
                block["text"] = block.get("text", "") + d.get("text", "")
            elif d.get("type") == "input_json_delta":
                self.partial.setdefault(i, []).append(d.get("partial_json", ""))
        elif kind == "message_delta":
            self.doc.update(doc.get("delta") or {})
            self.doc["usage"] = {**(self.doc.get("usage") or {}), **(doc.get("usage") or {})}

    def result(self) -> dict[str, Any]:
        if self.api == "messages":
            for i, parts in self.partial.items():
                try:
                    self.blocks[i]["input"] = json.loads("".join(parts) or "{}")
                except ValueError:
                    self.blocks[i]["input"] = {}
            return {**self.doc, "content": [self.blocks[i] for i in sorted(self.blocks)]}
        choices = []
        for i in sorted(set(self.texts) | set(self.finish) | set(self.tools)):
            text = "".join(self.texts.get(i, []))
            if self.api == "chat":
                msg: dict[str, Any] = {"role": "assistant", "content": text}
                if i in self.tools:
                    msg["tool_calls"] = [self.tools[i][j] for j in sorted(self.tools[i])]
                choices.append(
                    {"index": i, "message": msg, "finish_reason": self.finish.get(i), "logprobs": None}
                )
            else:
                choices.append(
                    {"index": i, "text": text, "finish_reason": self.finish.get(i), "logprobs": None}
                )
        obj = "chat.completion" if self.api == "chat" else "text_completion"
        return {**self.doc, "object": obj, "choices": choices}
