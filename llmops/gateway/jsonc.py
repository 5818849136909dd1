"""JSON on the request path: orjson when installed (the gateway extra has it), the standard library else.

Every request is parsed once and its upstream body written once, and every usage-log line is encoded;
orjson does each in a fraction of `json`'s time (about 1 µs instead of 4-6 µs for a small chat request,
more for long conversations). Anything orjson refuses (NaN, integers over 64 bits) falls back to `json`,
so what is accepted and the error messages stay the standard library's.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the gateway extra installs it
    orjson = None  # type: ignore[assignment]


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError (json.JSONDecodeError) with the standard library's message."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(doc)
        except TypeError:
            pass
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
