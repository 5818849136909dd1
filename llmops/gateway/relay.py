"""Stream relays: what happens to each block of events between the upstream and the client.

`Passthrough` forwards the upstream's bytes untouched when the client speaks the upstream's API, and
looks inside a block only when a substring check says it may carry usage, an error or the end marker.
`Translating` parses every event and re-emits it in the client's API (Anthropic <-> OpenAI).
Each relay knows whether the stream ended properly (`finished`) and what usage it reported.
"""

from __future__ import annotations

import re
from typing import Any

from llmops.gateway.sse import events, loads
from llmops.gateway.stages import Usage
from llmops.gateway.translate import (
    Assembler,
    ChatToMessagesStream,
    MessagesToChatStream,
    usage_from_anthropic,
    usage_from_openai,
)

_OPENAI_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_KEY = re.compile(rb'"error"\s*:')


class Relay:
    finished = False
    usage: Usage | None = None
    error: dict[str, Any] | None = None  # an error event the upstream sent mid-stream
    events = 0  # data events forwarded (an output-token estimate when the upstream gives no usage)

    def __init__(self, assembler: Assembler | None) -> None:
        self.assembler = assembler

    def process(self, block: bytes) -> bytes:
        raise NotImplementedError

    def end(self) -> bytes:
        """Anything to send after the upstream's end marker (translated streams close themselves)."""
        return b""

    def _capture(self, block: bytes) -> None:
        if self.assembler is not None:
            for name, data in events(block):
                self.assembler.feed(name, data)


class OpenAIPassthrough(Relay):
    """OpenAI chat/completions stream to an OpenAI client, bytes as they came."""

    def __init__(self, assembler: Assembler | None, strip_usage: bool) -> None:
        super().__init__(assembler)
        self.strip_usage = strip_usage  # the gateway asked for usage; the client did not

    def process(self, block: bytes) -> bytes:
        self.events += block.count(b"data:")
        if b"[DONE]" in block:
            self.finished = True
        m = _OPENAI_USAGE.search(block) or _ERROR_KEY.search(block)
        if m is not None:  # look only from the event that holds the match; earlier events pass as they are
            cut = block.rfind(b"\n\n", 0, m.start())
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


class AnthropicPassthrough(Relay):
    """Anthropic Messages stream to an Anthropic client, bytes as they came."""

    def __init__(self, assembler: Assembler | None) -> None:
        super().__init__(assembler)
        self.usage = Usage()

    def process(self, block: bytes) -> bytes:
        self.events += block.count(b"content_block_delta")
        if b"message_start" in block or b"message_delta" in block or b"error" in block:
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
        if b"message_stop" in block:
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
                self.events += 1
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
