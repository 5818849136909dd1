"""The ASGI application: a plain dispatch on method and path in front of `Gateway` (served by uvicorn).

Plain ASGI rather than a framework's request objects: the hot path touches the scope, the body and the
send channel directly, which is what keeps the gateway's own cost per request small. A task watches the
receive channel so a client that disconnects cancels its upstream call at once, streaming or not.
"""

from __future__ import annotations

import asyncio
import json
from time import perf_counter, thread_time
from typing import Any

from llmops.gateway.errors import GatewayError, error_body
from llmops.gateway.pipeline import JSON, Exchange, Gateway

API_PATHS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/messages": "messages",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "responses",
}


async def _json(send: Any, status: int, doc: Any, headers: list | None = None) -> None:
    await _bytes(send, status, json.dumps(doc).encode(), JSON, headers)


async def _bytes(send: Any, status: int, body: bytes, ctype: bytes, headers: list | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class GatewayApp:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.started = False

    async def startup(self) -> None:
        if not self.started:
            await self.gateway.start()
            self.started = True

    async def shutdown(self) -> None:
        if self.started:
            self.started = False
            await self.gateway.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.gateway.draining = True
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        api = API_PATHS.get(path)
        if api is not None:
            if method != "POST":
                return await _bytes(
                    send, 405, error_body(api, 405, f"{path} takes POST"), JSON, [(b"allow", b"POST")]
                )
            return await self._api(api, scope, receive, send)
        gw = self.gateway
        if path.startswith("/admin/cache"):  # `llmops gateway cache stats|clear` (loopback only)
            from llmops.gateway.cache.admin import serve_admin

            return await serve_admin(gw, scope, send)
        if path.startswith("/admin/"):  # reload and keys (llmops.gateway.admin): the admin key, or loopback
            from llmops.gateway.admin import serve_admin as serve_ops

            return await serve_ops(gw, scope, receive, send)
        if method != "GET":
            return await _bytes(send, 404, error_body("chat", 404, f"no route for {method} {path}"), JSON)
        if path == "/health":
            return await _json(send, 200, {"status": "ok"})
        if path == "/health/ready":
            doc = await gw.ready()
            return await _json(send, 200 if doc["ready"] else 503, doc)
        if path == "/metrics":
            t = thread_time()
            body, ctype = gw.metrics.exposition()
            if gw.lag.trace is not None:
                gw.lag.trace.add("metrics_render_s", thread_time() - t)
            return await _bytes(send, 200, body, ctype.encode())
        if path == "/v1/models":
            try:
                return await _json(send, 200, gw.models(_headers(scope)))
            except GatewayError as exc:
                return await _bytes(send, exc.status, error_body("chat", exc.status, exc.message), JSON)
        if gw.section.playground and path.startswith("/playground"):
            from llmops.playground import respond, wants

            if wants(path):
                return await respond(path, send)
        return await _bytes(send, 404, error_body("chat", 404, f"no route for GET {path}"), JSON)

    async def _api(self, api: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = perf_counter()
        gw = self.gateway
        if gw.lag.trace is not None:
            gw.lag.trace.add("requests")
        headers = _headers(scope)
        limit = gw.live.section.max_body_bytes
        if int(headers.get("content-length") or 0) > limit:
            msg = f"request body is over the gateway's limit of {limit} bytes"
            return await _bytes(send, 413, error_body(api, 413, msg), JSON)
        chunks = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                msg_ = f"request body is over the gateway's limit of {limit} bytes"
                return await _bytes(send, 413, error_body(api, 413, msg_), JSON)
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        exch = Exchange(send, t0)  # the pipeline sets exch.complete before it sends the last body message
        task = asyncio.current_task()
        watcher = asyncio.get_running_loop().create_task(self._watch(receive, exch, task))
        try:
            await gw.handle(api, raw, headers, send, exch)  # type: ignore[arg-type]
        finally:
            watcher.cancel()

    @staticmethod
    async def _watch(receive: Any, exch: Exchange, task: asyncio.Task | None) -> None:
        """Cancel the request's task the moment its client goes away."""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                if exch.complete:  # uvicorn says 'disconnect' once the response is out: nothing to stop
                    return
                exch.client_gone = True
                if task is not None:
                    task.cancel()
                return


def create_app(gateway: Gateway) -> GatewayApp:
    return GatewayApp(gateway)
