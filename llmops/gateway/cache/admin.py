"""`llmops gateway cache stats|clear`: inspect and empty the response cache, per route or whole.

With `redis:` the cache is read and cleared in Redis directly (every replica sees the change at once).
Without it the cache lives inside the running gateway process, which answers `GET /admin/cache` and
`POST /admin/cache/clear` (`?route=R`) from loopback only: those two paths are for the operator on the
same host, never for clients.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from llmops.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    from llmops.gateway.plan import GatewayPlan

ADMIN_PATH = "/admin/cache"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _route(plan: GatewayPlan, route: str | None) -> str | None:
    if route is None:
        return None
    return plan.table.lookup(route).name  # an alias resolves; an unknown name says what is close


def _configured(plan: GatewayPlan) -> None:
    if plan.section.cache is None and all(r.cache is None for r in plan.table.routes.values()):
        raise UsageError(
            "this gateway has no cache",
            hint="add `cache: {exact: {ttl: 3600}}` to the gateway: section of llmops.yaml",
        )


def _summary(routes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    keys = ("entries", "bytes", "lookups", "hit", "semantic_hit", "miss", "saved_tokens")
    total: dict[str, Any] = {k: sum(r[k] for r in routes.values()) for k in keys}
    total["saved_usd"] = round(sum(r["saved_usd"] for r in routes.values()), 6)
    hits = total["hit"] + total["semantic_hit"]
    total["hit_rate"] = round(hits / total["lookups"], 4) if total["lookups"] else None
    return total


async def _redis(plan: GatewayPlan, op: str, route: str | None) -> dict[str, Any]:
    from llmops.gateway.cache.redis_store import RedisCacheStore

    assert plan.section.redis is not None
    store = RedisCacheStore(plan.section.redis)
    try:
        if op == "clear":
            return {"removed": await store.clear(route)}
        return {"routes": {name: s.as_json() for name, s in (await store.stats(route)).items()}}
    finally:
        await store.close()


def _http(plan: GatewayPlan, op: str, route: str | None, url: str | None) -> dict[str, Any]:
    import httpx

    base = (
        url or f"http://{plan.host if plan.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{plan.port}"
    ).rstrip("/")
    params = {"route": route} if route else {}
    try:
        if op == "clear":
            r = httpx.post(f"{base}{ADMIN_PATH}/clear", params=params, timeout=10)
        else:
            r = httpx.get(base + ADMIN_PATH, params=params, timeout=10)
    except httpx.HTTPError as exc:
        raise OperationFailed(
            f"no gateway answers at {base} ({type(exc).__name__}); without redis: the cache lives in the gateway process",
            hint="start it with `llmops gateway`, or pass --url to the one running",
        ) from None
    if r.status_code != 200:
        raise OperationFailed(f"the gateway at {base} answered {r.status_code}: {r.text[:200]}")
    return r.json()


def run(plan: GatewayPlan, op: str, route: str | None = None, url: str | None = None) -> dict[str, Any]:
    """`stats` or `clear` for one route (name or alias) or all; one JSON-ready document."""
    _configured(plan)
    route = _route(plan, route)
    if plan.section.redis:
        from llmops.gateway.plan import _mask

        where = _mask(plan.section.redis)
        try:
            doc = asyncio.run(_redis(plan, op, route))
        except OSError as exc:
            raise OperationFailed(
                f"cannot reach redis at {where}: {exc}", hint="is redis-server running?"
            ) from None
        except Exception as exc:  # redis-py's ConnectionError is not an OSError
            if type(exc).__module__.startswith("redis"):
                raise OperationFailed(
                    f"cannot reach redis at {where}: {exc}", hint="is redis-server running?"
                ) from None
            raise
        doc = {"store": "redis", "where": where, **doc}
    else:
        doc = _http(plan, op, route, url)
    if op == "stats":
        doc["total"] = _summary(doc["routes"])
    return {"route": route, **doc}


async def serve_admin(gateway: Any, scope: dict[str, Any], send: Any) -> None:
    """The gateway's side of `cache stats|clear` (memory store): loopback callers only."""
    from llmops.gateway.cache.stage import CacheStage

    async def reply(status: int, doc: dict[str, Any]) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(doc).encode()})

    client = (scope.get("client") or ("",))[0]
    if client not in LOOPBACK:
        return await reply(403, {"error": {"message": "the cache admin paths answer loopback callers only"}})
    stage = gateway.cache
    if not isinstance(stage, CacheStage):
        return await reply(404, {"error": {"message": "this gateway has no cache"}})
    query = parse_qs(scope.get("query_string", b"").decode())
    route = (query.get("route") or [None])[0]
    path, method = scope["path"], scope["method"]
    if path == ADMIN_PATH and method == "GET":
        stats = await stage.store.stats(route)
        return await reply(200, {"store": "memory", "where": "gateway process",
                                 "routes": {k: v.as_json() for k, v in stats.items()}})  # fmt: skip
    if path == ADMIN_PATH + "/clear" and method == "POST":
        return await reply(
            200, {"store": "memory", "where": "gateway process", "removed": await stage.store.clear(route)}
        )
    return await reply(
        405, {"error": {"message": f"{method} {path}: use GET {ADMIN_PATH} or POST {ADMIN_PATH}/clear"}}
    )
