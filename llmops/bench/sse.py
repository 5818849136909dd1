"""Cheap server-sent-event scanning on the hot path: one C-level regex search per event, parse later.

During a run the client only needs to know *when* a content-bearing event arrived. JSON parsing of the
usage chunk and of the text (for tokenizer counting) happens after the run, from the bytes kept here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# A non-empty string value for content (or reasoning text): `"content":"x` but not `"content":""`.
_CHAT_CONTENT = re.compile(rb'"(?:content|reasoning_content|reasoning)"\s*:\s*"(?!")')
_TEXT_CONTENT = re.compile(rb'"text"\s*:\s*"(?!")')
_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_ERROR = re.compile(rb'^\s*\{\s*"error"\s*:')


@dataclass(slots=True)
class Record:
    """What one request did, as raw timestamps (time.perf_counter seconds) and kept bytes."""

    index: int = -1  # which prepared prompt
    t_send: float = 0.0
    lag: float = 0.0  # how late the request left compared with its scheduled arrival (client health)
    t_end: float = 0.0
    status: int = 0
    error: str | None = None  # kind: connect, timeout, disconnected, http_503, stream_error, empty, protocol
    detail: str | None = None
    content_times: list[float] = field(default_factory=list)
    usage_payloads: list[bytes] = field(default_factory=list)
    content_payloads: list[bytes] | None = None
    got_bytes: bool = False
    done: bool = False  # the stream's own end marker was seen
    head: bytes = b""  # the response's status line and headers
    # Called with every event's data as it arrives (interactive clients: `llmops try`); None in benchmarks.
    on_event: Callable[[bytes, float], None] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Scanner:
    """Splits a decoded body into SSE events and classifies each; one instance per endpoint kind."""

    content_re: re.Pattern[bytes] = _CHAT_CONTENT

    def feed(self, rec: Record, buf: bytes, now: float, later: float | None = None) -> bytes:
        """Consume complete events from buf (CRLF already normalised); return the unconsumed tail.

        The first event is stamped `now`, the others `later` when given (bytes read together may have
        arrived after the moment `now` stands for)."""
        parts = buf.split(b"\n\n")
        for ev in parts[:-1]:
            if ev:
                self.event(rec, ev, now)
                if later is not None:
                    now = later
        return parts[-1]

    def event(self, rec: Record, ev: bytes, now: float) -> None:
        if not ev.startswith(b"data:"):
            ev = _data_of(ev)
            if ev is None:
                return
        else:
            ev = ev[6:] if ev[5:6] == b" " else ev[5:]
            if b"\ndata:" in ev:
                ev = _data_of(b"data: " + ev) or b""
        if ev == b"[DONE]":
            rec.done = True
            return
        if rec.on_event is not None:
            rec.on_event(ev, now)
        if self.content_re.search(ev):
            rec.content_times.append(now)
            if rec.content_payloads is not None:
                rec.content_payloads.append(ev)
        if b'"usage"' in ev and _USAGE.search(ev):
            rec.usage_payloads.append(ev)
        elif _ERROR.match(ev):
            rec.error, rec.detail = "stream_error", ev[:300].decode("utf-8", "replace")


class ChatScanner(Scanner):
    content_re = _CHAT_CONTENT


class CompletionsScanner(Scanner):
    content_re = _TEXT_CONTENT


class AnthropicScanner(Scanner):
    """Anthropic Messages streaming: `event: NAME` then `data: {...}`; text arrives in content_block_delta."""

    def event(self, rec: Record, ev: bytes, now: float) -> None:
        if not ev.startswith(b"event:"):
            return
        nl = ev.find(b"\n")
        name = ev[6:nl].strip() if nl > 0 else ev[6:].strip()
        if rec.on_event is not None:
            rec.on_event(_data_of(ev) or b"", now)
        if name == b"content_block_delta":
            rec.content_times.append(now)
            if rec.content_payloads is not None:
                rec.content_payloads.append(_data_of(ev) or b"")
        elif name in (b"message_start", b"message_delta"):
            data = _data_of(ev)
            if data:
                rec.usage_payloads.append(data)
        elif name == b"message_stop":
            rec.done = True
        elif name == b"error":
            rec.error = "stream_error"
            rec.detail = (_data_of(ev) or b"")[:300].decode("utf-8", "replace")


def _data_of(ev: bytes) -> bytes | None:
    """The joined `data:` lines of one event (the slow, general path)."""
    lines = [ln[6:] if ln[5:6] == b" " else ln[5:] for ln in ev.split(b"\n") if ln.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


SCANNERS: dict[str, type[Scanner]] = {
    "chat": ChatScanner,
    "completions": CompletionsScanner,
    "anthropic": AnthropicScanner,
}
