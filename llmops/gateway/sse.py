"""Server-sent events at byte level: frame a stream on event boundaries and read only what must be read.

The pass-through path never decodes a chunk it does not need: it forwards whole events as bytes, and
looks inside only when a cheap substring check says an event may carry usage, an error or the end marker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class Framer:
    """Cuts an incoming byte stream into complete events ('\\n\\n'-terminated blocks)."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        """The complete events now available (maybe b''); a partial event waits for the next read."""
        if self.pending:
            data = self.pending + data
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self.pending = data
            return b""
        self.pending = data[end + 2 :]
        return data[: end + 2]


def events(block: bytes) -> Iterator[tuple[str | None, bytes]]:
    """(event name, data) for each event in a block of complete events; comments and empty ones skipped."""
    for raw in block.split(b"\n\n"):
        if not raw:
            continue
        name: str | None = None
        data: list[bytes] = []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        if data:
            yield name, b"\n".join(data)


def looks_like_sse(block: bytes) -> bool:
    """Whether a block starts as server-sent events do (a garbage body does not)."""
    head = block.lstrip(b"\n")[:6]
    return head.startswith((b"data:", b"event:", b":", b"id:", b"retry:"))


def loads(data: bytes) -> Any:
    """JSON of one event's data, or None when it is not JSON."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def data_event(doc: Any) -> bytes:
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


def named_event(name: str, doc: Any) -> bytes:
    return (
        b"event: " + name.encode() + b"\ndata: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"
    )


DONE = b"data: [DONE]\n\n"
