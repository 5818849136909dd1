"""Stream relays: what happens to each block of events between the upstream and the client.

`Passthrough` forwards the upstream's bytes untouched when the client speaks the upstream's API, and
looks inside a block only when a substring check says it may carry usage, an error or the end marker.
`Translating` parses every event and re-emits it in the client's API (Anthropic <-> OpenAI).
Each relay knows whether the stream ended properly (`finished`) and what usage it reported.
"""

from __future__ import annotations

import re
from typing import Any

from llmops.gateway.sse import ANTHROPIC_CONTENT, OPENAI_CONTENT, events, loads
from llmops.gateway.stages import Usage
from llmops.gateway.translate import (
    Assembler,
    ChatToMessagesStream,
    MessagesToChatStream,
    usage_from_anthropic,
    usage_from_openai,
    usage_from_responses,
)

# Substring tests on the per-chunk path are `block.find(x) >= 0`, not `x in block`: for bytes, `in` first
# tries its argument as an integer, which raises and formats a TypeError inside CPython before the search
# (about 1,700 instructions per test; a quarter of the gateway's per-chunk instructions, callgrind).
_OPENAI_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_KEY = re.compile(rb'"error"\s*:')


def _key_at(block: bytes, key: bytes, pattern: re.Pattern[bytes]) -> int:
    """Where `key` starts as the pattern has it (`"usage": {`, not `"usage": null`), or -1. A memchr-fast
    find for the key, the regex only where it is: a block of many events is not scanned by the regex."""
    i = block.find(key)
    while i >= 0:
        if pattern.match(block, i) is not None:
            return i
        i = block.find(key, i + len(key))
    return -1


class Relay:
    finished = False
    count = True  # events counts every content event (else only whether there was one)
    blocks = 0  # reads relayed
    usage: Usage | None = None
    error: dict[str, Any] | None = None  # an error event the upstream sent mid-stream
    events = 0  # events with content forwarded: > 0 from the first token (TTFT); the output-token
    # estimate when the upstream reports no usage

    def __init__(self, assembler: Assembler | None) -> None:
        self.assembler = assembler

    def process(self, block: bytes) -> bytes:
        raise NotImplementedError

    @property
    def output_estimate(self) -> int:
        """Output tokens when the upstream reported none: one per content event, or (when they were not
        counted: an upstream that reports usage did not this time) one per read, as engines stream a
        token per chunk."""
        return self.events if self.count else self.blocks

    def end(self) -> bytes:
        """Anything to send after the upstream's end marker (translated streams close themselves)."""
        return b""

    def _capture(self, block: bytes) -> None:
        if self.assembler is not None:
            for name, data in events(block):
                self.assembler.feed(name, data)


class OpenAIPassthrough(Relay):
    """OpenAI chat/completions stream to an OpenAI client, bytes as they came."""

    def __init__(self, assembler: Assembler | None, strip_usage: bool, count: bool = True) -> None:
        super().__init__(assembler)
        self.strip_usage = strip_usage  # the gateway asked for usage; the client did not
        # Count every content event (the output-token estimate) only for an upstream not yet seen to
        # report usage in streams; otherwise look just for the first one (TTFT).
        self.count = count

    def process(self, block: bytes) -> bytes:
        if self.count:
            self.events += len(OPENAI_CONTENT.findall(block))
        elif not self.events and OPENAI_CONTENT.search(block) is not None:
            self.events = 1
        self.blocks += 1
        if block.find(b"[DONE]") >= 0:
            self.finished = True
        if block.find(b'"usage"') >= 0 or block.find(b'"error"') >= 0:
            at = _key_at(block, b'"usage"', _OPENAI_USAGE)
            err = _key_at(block, b'"error"', _ERROR_KEY)
            if err >= 0 and (at < 0 or err < at):
                at = err
            if at >= 0:  # look only from the event holding the key; earlier ones pass as they are
                cut = block.rfind(b"\n\n", 0, at)
                start = cut + 2 if cut >= 0 else 0
                block = block[:start] + self._inspect(block[start:])
        if self.assembler is not None:
            self._capture(block)
        return block

    def _inspect(self, block: bytes) -> bytes:
        kept: list[bytes] = []
        for raw in block.split(b"\n\n"):
            if not raw:
                continue
            if not (_OPENAI_USAGE.search(raw) or _ERROR_KEY.search(raw)):  # most events: no parsing at all
                kept.append(raw)
                continue
            data = raw[6:] if raw.startswith(b"data: ") else raw[5:] if raw.startswith(b"data:") else b""
            doc = loads(data) if data and data != b"[DONE]" else None
            if isinstance(doc, dict):
                if isinstance(doc.get("usage"), dict):
                    self.usage = usage_from_openai(doc["usage"])
                    if self.strip_usage and not doc.get("choices"):
                        continue
                if doc.get("error") is not None:
                    err = doc["error"]
                    self.error = err if isinstance(err, dict) else {"message": str(err)}
            kept.append(raw)
        return b"\n\n".join(kept) + b"\n\n" if kept else b""


_RESPONSES_DELTA = re.compile(
    rb'"type"\s*:\s*"response\.(?:output_text|reasoning_text|reasoning_summary_text|function_call_arguments'
    rb'|refusal)\.delta"'
)
_RESPONSES_LAST = re.compile(rb'"type"\s*:\s*"(?:response\.(?:completed|failed|incomplete)|error)"')


class ResponsesPassthrough(Relay):
    """OpenAI Responses API stream (`/v1/responses`) to its client, bytes as they came.

    The stream has no `[DONE]`: it ends with `response.completed` (usage inside its `response`),
    `response.incomplete` or `response.failed`, or an `error` event; only those events are parsed."""

    def process(self, block: bytes) -> bytes:
        self.blocks += 1
        self.events += len(_RESPONSES_DELTA.findall(block))
        if _RESPONSES_LAST.search(block) is not None:
            for _, data in events(block):
                doc = loads(data)
                kind = doc.get("type") if isinstance(doc, dict) else None
                if kind == "error":
                    self.error = {"message": str(doc.get("message") or "error"), "code": doc.get("code")}
                    self.finished = True
                elif kind in ("response.completed", "response.incomplete", "response.failed"):
                    resp = doc.get("response") or {}
                    self.usage = usage_from_responses(resp.get("usage"))
                    self.finished = True
                    if kind == "response.failed":
                        err = resp.get("error")
                        self.error = err if isinstance(err, dict) else {"message": "the response failed"}
        return block


class AnthropicPassthrough(Relay):
    """Anthropic Messages stream to an Anthropic client, bytes as they came."""

    def __init__(self, assembler: Assembler | None) -> None:
        super().__init__(assembler)
        self.usage = Usage()

    def process(self, block: bytes) -> bytes:
        self.events += block.count(ANTHROPIC_CONTENT)
        if (
            block.find(b"message_start") >= 0
            or block.find(b"message_delta") >= 0
            or block.find(b"error") >= 0
        ):
            for name, data in events(block):
                doc = loads(data)
                if not isinstance(doc, dict):
                    continue
                kind = doc.get("type") or name
                if kind == "message_start":
                    self.usage = usage_from_anthropic((doc.get("message") or {}).get("usage"))
                elif kind == "message_delta":
                    u = doc.get("usage") or {}
                    if u.get("output_tokens") is not None:
                        self.usage.output_tokens = int(u["output_tokens"])
                elif kind == "error":
                    self.error = doc.get("error") or {}
        if block.find(b"message_stop") >= 0:
            self.finished = True
        if self.assembler is not None:
            self._capture(block)
        return block


class Translating(Relay):
    """Every event parsed and re-emitted in the client's API."""

    def __init__(
        self, assembler: Assembler | None, conv: ChatToMessagesStream | MessagesToChatStream
    ) -> None:
        super().__init__(assembler)
        self.conv = conv

    def process(self, block: bytes) -> bytes:
        out = b""
        conv = self.conv
        for name, data in events(block):
            if isinstance(conv, ChatToMessagesStream):
                if data == b"[DONE]":
                    out += conv.end()
                    self.finished = True
                    continue
                doc = loads(data)
                if not isinstance(doc, dict):
                    continue
                if doc.get("error") is not None:
                    err = doc["error"]
                    self.error = err if isinstance(err, dict) else {"message": str(err)}
                    continue
                self.events += OPENAI_CONTENT.search(data) is not None
                out += conv.chunk(doc)
            else:
                doc = loads(data)
                if not isinstance(doc, dict):
                    continue
                out += conv.event(name, doc)
                self.events += name == "content_block_delta"
                if conv.error is not None:
                    self.error = conv.error
                if conv.finished:
                    self.finished = True
        self.usage = conv.usage
        if out and self.assembler is not None:
            self._capture(out)
        return out
