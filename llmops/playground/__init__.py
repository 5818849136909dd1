"""The web playground the gateway serves at /playground (when `playground: true` in its section).

A static page (HTML, one script, one stylesheet) shipped inside the package: no build step, nothing
loaded from a CDN, so it works offline. It calls the gateway that served it (same origin) with the client
key the user enters once. Its parameter table and presets come from `llmops.sampling` via meta.json, so
the page and `llmops try` agree on names, ranges and presets.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from llmops.sampling.confidence import HIGH, LOW
from llmops.sampling.params import COMPARABLE, PARAMS
from llmops.sampling.presets import PRESETS

PREFIX = "/playground"
FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    "/playground.css": ("playground.css", "text/css; charset=utf-8"),
}
SLIDERS = {"temperature": (0, 2), "top_p": (0.01, 1)}
HEADERS = {
    # Only this origin: the page's own files and the gateway API it calls.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


def meta() -> dict[str, Any]:
    """Parameters (ranges and meanings), presets and confidence bands, as the page reads them."""
    params = [
        {
            "name": p.name,
            "kind": {float: "float", int: "int", list: "list"}[p.kind],
            "low": p.low,
            "low_open": p.low_open,
            "high": p.high,
            "high_open": p.high_open,
            "meaning": p.meaning,
            "slider": SLIDERS.get(p.name),
        }
        for p in PARAMS.values()
    ]
    presets = [
        {
            "name": p.name,
            "task": p.task,
            "values": p.values,
            "n": p.n,
            "note": p.note,
            "describe": p.describe(),
        }
        for p in PRESETS.values()
    ]
    return {
        "params": params,
        "presets": presets,
        "comparable": list(COMPARABLE),
        "bands": {"high": HIGH, "low": LOW},
    }


@cache
def asset(path: str) -> tuple[bytes, str] | None:
    """(body, content type) for a path under /playground, or None."""
    if path == "/meta.json":
        return json.dumps(meta()).encode(), "application/json"
    entry = FILES.get(path.rstrip("/") if path != "/" else "")
    if entry is None:
        return None
    name, ctype = entry
    return resources.files("llmops.playground").joinpath("static", name).read_bytes(), ctype


def wants(path: str) -> bool:
    """Whether a GET path belongs to the playground."""
    return path == PREFIX or path.startswith(PREFIX + "/")


async def respond(path: str, send: Any) -> None:
    """Answer a GET under /playground on a plain ASGI `send` channel (the gateway's app calls this)."""
    found = asset(path[len(PREFIX) :])
    status, (body, ctype) = (200, found) if found else (404, (b"not found", "text/plain"))
    headers = [(b"content-type", ctype.encode()), *((k.encode(), v.encode()) for k, v in HEADERS.items())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
