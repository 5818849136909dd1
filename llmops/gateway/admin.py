"""`/admin/` on the running gateway (reload, keys) and the client the CLI uses to call it.

    POST /admin/reload                 {"all": false}  -> generation, what changed (400: invalid, nothing changed)
    GET  /admin/keys                                   -> every key by name; never a value
    POST /admin/keys                   {"name", "rpm", "tpm", "budget_usd", "routes", "expires_in_s"}
    POST /admin/keys/NAME/revoke
    POST /admin/keys/NAME/rotate       {"grace_s": 600}

Guarded by the admin key (`Authorization: Bearer`, or `x-api-key`) from the variable `admin_key_env`
names (default LLMOPS_GATEWAY_ADMIN_KEY). Without one the paths answer loopback callers only, and not
through a proxy. The admin key is compared as a digest and never logged, echoed or stored.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from llmops.errors import LlmopsError, NotFoundError, OperationFailed, UsageError
from llmops.gateway.auth import digest, presented_key
from llmops.gateway.config import ADMIN_KEY_ENV

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_BODY = 64 * 1024


def _allowed(gateway: Any, scope: dict[str, Any]) -> tuple[int, str] | None:
    """None when the caller may use /admin/, else (status, why)."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or ()}
    if gateway.admin_digest is not None:
        value = presented_key(headers)
        if value is None or not hmac.compare_digest(digest(value), gateway.admin_digest):
            return 401, "the admin paths need the gateway's admin key (Authorization: Bearer <admin key>)"
        return None
    client = (scope.get("client") or ("",))[0]
    if client not in LOOPBACK or "x-forwarded-for" in headers or "forwarded" in headers:
        return 403, f"without an admin key ({ADMIN_KEY_ENV}) the admin paths answer loopback callers only"
    return None


async def _body(receive: Any) -> dict[str, Any]:
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunks.append(msg.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY:
            raise UsageError("admin request body too large")
        if not msg.get("more_body"):
            break
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise UsageError("admin request body is not JSON") from None
    if not isinstance(doc, dict):
        raise UsageError("admin request body must be a JSON object")
    return doc


def _opt(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise UsageError(f"'{name}' has the wrong type")
    return value


async def serve_admin(gateway: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    async def reply(status: int, doc: dict[str, Any]) -> None:
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(doc).encode()})

    refused = _allowed(gateway, scope)
    if refused is not None:
        status, why = refused
        return await reply(status, {"error": {"message": why, "type": "admin_auth"}})
    path, method = scope["path"].rstrip("/"), scope["method"]
    from pydantic import ValidationError

    try:
        doc = await _route(gateway, path, method, receive)
    except ValidationError as exc:  # a key's name or limits out of bounds
        why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return await reply(400, {"error": {"message": why, "type": "invalid"}})
    except NotFoundError as exc:
        return await reply(404, {"error": {"message": exc.render(), "type": "not_found"}})
    except LlmopsError as exc:  # an invalid configuration or request: nothing changed
        return await reply(400, {"error": {"message": exc.render(), "type": "invalid"}})
    if doc is None:
        return await reply(404, {"error": {"message": f"no admin path {method} {path}", "type": "not_found"}})
    return await reply(200, doc)


async def _route(gateway: Any, path: str, method: str, receive: Any) -> dict[str, Any] | None:
    keys = gateway.keys
    if path == "/admin/reload" and method == "POST":
        body = await _body(receive)
        return await gateway.reloader.reload(announce=bool(body.get("all")))
    if path == "/admin/keys" and method == "GET":
        return {"store": keys.store.where, "keys": await keys.list()}
    if path == "/admin/keys" and method == "POST":
        body = await _body(receive)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError("'name' is required")
        from llmops.gateway.keys import KeyRecord

        # The same rules as the stored record (name pattern, positive limits), checked before anything is made.
        routes = _opt(body, "routes", list)
        KeyRecord(
            name=name,
            sha256="0" * 64,
            routes=routes,
            rpm=_opt(body, "rpm", int),
            tpm=_opt(body, "tpm", int),
            budget_usd=_opt(body, "budget_usd", (int, float)),
            created_at=0,
        )
        return await keys.create(
            name,
            rpm=body.get("rpm"),
            tpm=body.get("tpm"),
            budget_usd=body.get("budget_usd"),
            routes=routes,
            expires_in_s=_opt(body, "expires_in_s", (int, float)),
        )
    parts = path.split("/")  # ['', 'admin', 'keys', NAME, op]
    if len(parts) == 5 and parts[2] == "keys" and method == "POST":
        name, op = parts[3], parts[4]
        if op == "revoke":
            return await keys.revoke(name)
        if op == "rotate":
            body = await _body(receive)
            grace = _opt(body, "grace_s", (int, float))
            return await keys.rotate(name, float(grace or 0))
    return None


# --- the CLI's side -----------------------------------------------------------------------------------


def target(
    load_section: Any, url: str | None, environ: dict[str, str] | None = None
) -> tuple[str, str | None]:
    """(base URL, admin key) of the running gateway: --url, else host and port resolved as `llmops gateway`
    resolves them (flags > LLMOPS_GATEWAY_* > llmops.yaml > defaults). `load_section` reads the workspace's
    gateway section only when it is needed (with --url an invalid file is the gateway's to report)."""
    from llmops.gateway.config import DEFAULT_HOST, DEFAULT_PORT
    from llmops.settings import Resolver

    env = os.environ if environ is None else environ
    if url:
        return url.rstrip("/"), env.get(ADMIN_KEY_ENV) or None
    sec = load_section()
    r = Resolver(section="gateway", workspace=sec)
    host = r.take("host", None, default=DEFAULT_HOST)
    port = r.take("port", None, default=DEFAULT_PORT)
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{port}", env.get(sec.admin_key_env or ADMIN_KEY_ENV) or None


def call(
    base: str, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None
) -> dict[str, Any]:
    """One admin call; the gateway's refusal becomes the matching llmops error (exit 2, or 1 unreachable)."""
    import httpx

    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        r = httpx.request(method, base + path, json=body, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise OperationFailed(
            f"no gateway answers at {base} ({type(exc).__name__})",
            hint="start it with `llmops gateway`, or pass --url to the one running",
        ) from None
    try:
        doc = r.json()
    except ValueError:
        doc = {}
    if r.status_code == 200:
        return doc
    message = (doc.get("error") or {}).get("message") if isinstance(doc, dict) else None
    message = message or f"the gateway at {base} answered {r.status_code}"
    if r.status_code in (401, 403):
        raise UsageError(message, hint=f"export {ADMIN_KEY_ENV}=<the gateway's admin key>")
    if r.status_code in (400, 404):
        raise UsageError(message)  # already rendered with its hint by the gateway
    raise OperationFailed(message)
