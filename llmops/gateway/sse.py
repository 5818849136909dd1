"""Server-sent events at byte level: frame a stream on event boundaries and read only what must be read.

The pass-through path never decodes a chunk it does not need: it forwards whole events as bytes, and
looks inside only when a cheap substring check says an event may carry usage, an error or the end marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from llmops.gateway import jsonc

# An event that carries generated output: a non-empty string for text, reasoning or tool-call arguments
# (`"content":"x`, not `"content":""` nor `"content":null`), as llmops's bench client detects it (TTFT is
# the first chunk with content, DESIGN.md). Inside a JSON string every quote is escaped, so a key cannot
# be faked by the text itself. One C-level pass per block; counted, it is the output-token estimate for
# upstreams that send no usage in streams (llama-cpp-python's server).
OPENAI_CONTENT = re.compile(rb'"(?:content|reasoning_content|reasoning|text|arguments)"\s*:\s*"(?!")')
ANTHROPIC_CONTENT = b'"content_block_delta"'  # the event's "type" value, once per event


class Framer:
    """Cuts an incoming byte stream into complete events ('\\n\\n'-terminated blocks)."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        """The complete events now available (maybe b''); a partial event waits for the next read."""
        # find() rather than `in`: see llmops.gateway.relay (bytes `in` raises internally first)
        if not self.pending and data.endswith(b"\n\n") and data.find(b"\r") < 0:
            return data  # the usual read: whole events, nothing to cut or copy
        if self.pending:
            data = self.pending + data
        if data.find(b"\r") >= 0:
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
        return jsonc.loads(data)
    except ValueError:
        return None


def data_event(doc: Any) -> bytes:
    return b"data: " + jsonc.dumps(doc) + b"\n\n"


def named_event(name: str, doc: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + jsonc.dumps(doc) + b"\n\n"


DONE = b"data: [DONE]\n\n"
