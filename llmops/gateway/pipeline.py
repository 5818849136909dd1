"""The request path: auth -> limits -> guard -> cache -> route -> call -> relay -> accounting.

`Gateway.handle` runs one API request through the stages. Every failure becomes an answer in the
client's API error shape; nothing a request does can take the gateway down.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from llmops.gateway import jsonc
from llmops.gateway.auth import Authenticator, ClientKey, digest, load_keys
from llmops.gateway.balance import Health
from llmops.gateway.config import ADMIN_KEY_ENV, GatewaySection
from llmops.gateway.deadline import Deadline
from llmops.gateway.errors import GatewayError, error_body, error_doc, stream_error_event
from llmops.gateway.keys import KeyAdmin, open_key_store
from llmops.gateway.limits import Held, Limiter, estimate
from llmops.gateway.looplag import LoopLag, trace_from_env
from llmops.gateway.metrics import Metrics
from llmops.gateway.relay import (
    AnthropicPassthrough,
    OpenAIPassthrough,
    Relay,
    ResponsesPassthrough,
    Translating,
)
from llmops.gateway.reload import Live, Loader, Reloader
from llmops.gateway.sse import Framer, looks_like_sse
from llmops.gateway.stages import Api, Call, Outcome, Reply, Stage, StageContext, Usage, load_slot
from llmops.gateway.store import MemoryStore, Store, open_store
from llmops.gateway.table import Deployment, Route, RouteTable
from llmops.gateway.tracing import open_tracing
from llmops.gateway.translate import (
    Assembler,
    ChatToMessagesStream,
    MessagesToChatStream,
    chat_response_to_message,
    chat_to_messages,
    message_to_chat_response,
    messages_to_chat,
    replay,
    usage_from_anthropic,
    usage_from_openai,
    usage_from_responses,
)
from llmops.gateway.upstream import Upstream, UpstreamFailure, UpstreamRefusal
from llmops.gateway.usage import UsageLog, default_path, read_spend, utc_now_ms

JSON = b"application/json"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
UPSTREAM_PATH = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "responses": "/responses",
}
CLIENT_GONE = 499  # the client closed the connection (nginx's convention)


@dataclass
class Exchange:
    """Per-request bookkeeping the client never sees."""

    send: Any
    t0: float
    upstream_s: float = 0.0  # time spent waiting on upstreams (not the gateway's overhead)
    started: bool = False  # response headers went out: no retry from here on
    client_gone: bool = False
    complete: bool = False  # the last body message is going out (set just before it is sent)
    overhead_s: float | None = None
    answering: tuple[str, str] | None = None  # (route, deployment)
    held: Held | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    live: Live = None  # type: ignore[assignment]  # the configuration generation this request runs on
    span: Any = None  # the request's trace span (tracing on)
    upstream_headers: dict[str, str] | None = None  # traceparent of the current upstream try
    tries: int = 0


def _finish_reasons(doc: Any) -> list[str]:
    """finish_reason of each choice (OpenAI) or stop_reason (Anthropic) of an assembled reply."""
    if not isinstance(doc, dict):
        return []
    if doc.get("stop_reason"):
        return [str(doc["stop_reason"])]
    return [
        str(c["finish_reason"])
        for c in doc.get("choices") or ()
        if isinstance(c, dict) and c.get("finish_reason")
    ]


class Gateway:
    def __init__(
        self,
        section: GatewaySection,
        table: RouteTable,
        *,
        store: Store | None = None,
        environ: dict[str, str] | None = None,
        usage_path: Path | None = None,
        metrics: Metrics | None = None,
        loader: Loader | None = None,
    ) -> None:
        # The configuration in force: one object, read once per request (see llmops.gateway.reload).
        self.live = Live(1, section, table, Stage(), Stage())
        self.loader = loader  # re-reads the workspace file and profiles for a reload (None: cannot reload)
        self.metrics = metrics or Metrics()
        self.store: Store = store or open_store(section.redis)
        self.auth = Authenticator(load_keys(section.keys, environ))
        self.limiter = Limiter(self.store, self.metrics)
        self.health = Health(table, self.store, section.breaker, self.metrics)
        self.upstream = Upstream(section.timeouts.connect_s, environ)
        path = usage_path or (Path(section.usage_log) if section.usage_log else default_path())
        self.usage = UsageLog(path)
        self.lag = LoopLag(self.metrics.loop_lag.labels(), trace_from_env(environ))
        self.usage.trace = self.upstream.trace = self.lag.trace
        self.draining = False
        self.reloader: Reloader | None = None  # made at start: reloads, and announcements through redis
        self.keys: KeyAdmin | None = None  # made at start: run-time keys (keys.json or redis)
        env = self.upstream.env
        admin = env.get(section.admin_key_env or ADMIN_KEY_ENV)
        self.admin_digest = digest(admin) if admin else None  # the admin key itself is not kept
        self.tracing = open_tracing(section.otel, env, self.metrics)  # None: off, and nothing on the path
        # Request ids: a random per-process prefix and a counter (unique across replicas, which share
        # rate-limit windows keyed by it, without a urandom call per request as uuid4 makes).
        self._id_prefix = os.urandom(8).hex()
        self._id_count = itertools.count(1)
        self._stream_usage: set[str] = set()  # deployments seen to report usage in streams

    def _request_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_count):016x}"

    # The configuration in force, for everything outside the request path (admin paths, tests).
    @property
    def section(self) -> GatewaySection:
        return self.live.section

    @property
    def table(self) -> RouteTable:
        return self.live.table

    @property
    def guard(self) -> Stage:
        return self.live.guard

    @property
    def cache(self) -> Stage:
        return self.live.cache

    @property
    def stages(self) -> list[Stage]:
        return self.live.stages

    def _set_slots(self, guard: Stage, cache: Stage) -> None:
        self.live.set_slots(guard, cache)

    async def start(self) -> None:
        await self.upstream.start()
        if isinstance(self.store, MemoryStore):  # budgets outlive a restart: spend so far from the log
            for name, usd in read_spend(self.usage.path).items():
                self.store.spent[f"key:{name}"] = usd
        else:
            await self.store.ping()  # type: ignore[attr-defined]
        self.usage.start()
        self.lag.start()
        ctx = StageContext(self.section, self.table, self.store, self.metrics, self.upstream.env)
        self._set_slots(load_slot("guard", ctx), load_slot("cache", ctx))
        self.metrics.config_generation.set(self.live.generation)
        self.keys = KeyAdmin(self, open_key_store(self.store, self.usage.path), self.auth.keys)
        await self.keys.start()
        self.reloader = Reloader(self)
        await self.reloader.start()

    async def close(self) -> None:
        """Release everything; one part failing (a vanished log folder) does not keep the rest open."""
        import logging

        log = logging.getLogger("llmops.gateway")
        if self.reloader is not None:
            await self.reloader.close()
        for part in (
            self.lag,
            *self.stages,
            self.usage,
            self.upstream,
            self.store,
            *([self.tracing] if self.tracing else []),
        ):
            try:
                await part.close()
            except Exception as exc:
                log.warning("closing %s failed: %s", type(part).__name__, exc)

    # --- the request path -------------------------------------------------------------------------

    async def handle(self, api: Api, raw: bytes, headers: dict[str, str], send: Any, exch: Exchange) -> None:
        call: Call | None = None
        key: ClientKey | None = None
        outcome: Outcome | None = None
        inflight = None
        live = exch.live = self.live
        live.inflight += 1
        tr = self.tracing
        if tr is not None:
            exch.span = tr.request(api, headers)
        try:
            if tr is not None:
                sp = tr.child(exch.span, "auth")
            key = self.auth.check(headers)
            if tr is not None:
                sp.end()
            body = self._parse(api, raw)
            exch.extra["asked"] = body["model"]
            route = live.table.get(body["model"])
            if route is None:
                near = live.table.close_matches(body["model"])
                hint = (
                    f"; did you mean {', '.join(repr(n) for n in near)}?"
                    if near
                    else "; GET /v1/models lists them"
                )
                raise GatewayError(
                    404,
                    f"unknown model (route) '{body['model']}'{hint}",
                    code="model_not_found",
                    param="model",
                )
            if key is not None and not key.may_use(route.name):
                raise GatewayError(
                    403, f"key '{key.name}' may not use route '{route.name}'", code="route_not_allowed"
                )
            call = Call(
                api=api,
                body=body,
                route=route,
                stream=bool(body.get("stream")),
                headers=headers,
                key_name=key.name if key else None,
                request_id=self._request_id(),
                t_start=exch.t0,
            )
            inflight = self.metrics.child(self.metrics.inflight, route.name)
            inflight.inc()
            if tr is not None:
                sp = tr.child(exch.span, "limits")
            if key is not None:
                held, over_budget = await self.limiter.admit_key(key, call.request_id, estimate(body))
                exch.held = held
                if over_budget and key.config.budget_route:
                    call.route = live.table.lookup(key.config.budget_route)
                    call.response_headers["x-llmops-budget"] = "downgraded"
            else:
                exch.held = Held(call.request_id, estimate(body))
            if tr is not None:
                sp.end()
            # The guard and cache know chat, completions, messages and embeddings (an exact key over the
            # whole input); a Responses API request is refused where a guard is set rather than unscreened.
            if api == "responses" and type(live.guard) is not Stage:
                raise GatewayError(
                    400,
                    "this gateway screens requests with its guard, which does not read /v1/responses yet; "
                    "use /v1/chat/completions",
                    code="unsupported_api",
                )
            for stage in live.stages if api != "responses" else ():
                if tr is not None:
                    sp = tr.child(exch.span, "cache lookup" if stage.name == "cache" else stage.name)
                reply = await stage.on_request(call)
                if tr is not None:
                    sp.end()
                if reply is not None:
                    outcome = await self._answer(call, reply, exch, stage.name)
                    return
            outcome = await self._forward(call, exch)
        except asyncio.CancelledError:
            if not exch.client_gone:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = Outcome(CLIENT_GONE, False, error="client_disconnected")
        except GatewayError as exc:
            outcome = Outcome(exc.status, False, error=exc.reason or exc.code or "refused")
            await self._send_error(api, exch, exc)
        except Exception as exc:  # a bug must cost one request, never the gateway
            outcome = Outcome(500, False, error=f"internal: {type(exc).__name__}")
            await self._send_error(
                api, exch, GatewayError(500, f"internal gateway error ({type(exc).__name__})")
            )
        finally:
            try:
                if inflight is not None:
                    inflight.dec()
                if outcome is not None:
                    await self._account(call, key, outcome, exch, api)
            finally:
                live.inflight -= 1
                if live.retired and not live.inflight:
                    self.reloader.drained(live)  # type: ignore[union-attr]
                if exch.span is not None:
                    self._end_span(exch, call, key, outcome)

    def _parse(self, api: Api, raw: bytes) -> dict[str, Any]:
        try:
            body = jsonc.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GatewayError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise GatewayError(400, "request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise GatewayError(
                400, "'model' is required: the route name (GET /v1/models lists them)", param="model"
            )
        if api in ("chat", "messages"):
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not msgs:
                raise GatewayError(400, "'messages' must be a non-empty list", param="messages")
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                    raise GatewayError(
                        400, f"messages[{i}] must be an object with a 'role'", param="messages"
                    )
        elif api == "completions":
            if not isinstance(body.get("prompt"), str | list):
                raise GatewayError(400, "'prompt' is required (a string or a list)", param="prompt")
        elif api == "embeddings" or "input" in body:  # responses may go on from previous_response_id
            inp = body.get("input")
            if not isinstance(inp, str | list) or not inp:
                raise GatewayError(400, "'input' is required (a string or a list)", param="input")
            if api == "embeddings" and body.get("stream"):
                raise GatewayError(400, "embeddings are not streamed: leave 'stream' out", param="stream")
        if api == "messages":
            mt = body.get("max_tokens")
            if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
                raise GatewayError(400, "'max_tokens' is required: a positive integer", param="max_tokens")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise GatewayError(400, "'stream' must be true or false", param="stream")
        return body

    async def _forward(self, call: Call, exch: Exchange) -> Outcome:
        if call.api == "responses":
            routes = exch.live.responses_chains.get(call.route.name)
            if routes is None:
                names = ", ".join(d.name for d in call.route.deployments)
                raise GatewayError(
                    400,
                    f"route '{call.route.name}' has no deployment that serves the Responses API "
                    f"(/v1/responses; deployments: {names}); use /v1/chat/completions, or mark a deployment "
                    "that serves it (vLLM, OpenAI) with responses: true",
                    code="unsupported_api",
                    param="model",
                )
        else:
            routes = exch.live.chains[call.route.name]
        deadline = exch.t0 + call.route.timeouts.total_s
        last: UpstreamFailure | None = None
        for i, route in enumerate(routes):
            if i > 0:
                self.metrics.fallbacks.labels(call.route.name, route.name).inc()
            result = await self._try_route(call, route, exch, deadline)
            if isinstance(result, Outcome):
                return result
            last = result or last
            if perf_counter() >= deadline:
                break
        if last is None:
            raise GatewayError(
                503,
                f"route '{call.route.name}' has no healthy deployment (all cooled down)",
                reason="no_deployment",
            )
        if last.reason == "deployment_limit":
            raise GatewayError(
                429,
                f"every deployment of route '{call.route.name}' is at its rate limit",
                headers={"retry-after": "1"},
                reason="deployment_limit",
            )
        status = 504 if last.reason in ("timeout", "stall") else 429 if last.reason == "status_429" else 502
        headers = {}
        if status == 429 and last.retry_after:
            headers["retry-after"] = str(max(1, int(last.retry_after + 0.999)))
        raise GatewayError(
            status,
            f"route '{call.route.name}': every try failed; last: {last.detail}",
            headers=headers,
            reason=last.reason,
        )

    async def _try_route(
        self, call: Call, route: Route, exch: Exchange, deadline: float
    ) -> Outcome | UpstreamFailure | None:
        tried: set[str] = set()
        last: UpstreamFailure | None = None
        retry_cfg = exch.live.section.retries
        for n in range(1 + route.retries):
            await self.health.sync()
            dep = self.health.pick(route, tried)
            if dep is None:
                break
            if (missing := self.upstream.missing_key(dep)) is not None:
                tried.add(dep.key)
                last = UpstreamFailure(
                    "no_key", f"deployment '{dep.name}' needs {missing} set on the gateway"
                )
                continue
            assert exch.held is not None
            if (dep.rpm or dep.tpm) and not await self.limiter.admit_deployment(dep, exch.held):
                tried.add(dep.key)
                self.metrics.rejections.labels(call.key_name or "-", "deployment").inc()
                last = UpstreamFailure("deployment_limit", f"deployment '{dep.name}' is at its rate limit")
                continue
            if n > 0:
                self.metrics.retries.labels(route.name).inc()
            tried.add(dep.key)
            self.metrics.child(self.metrics.dep_requests, route.name, dep.name).inc()
            self.health.inflight[dep.key] += 1
            ts = None
            if exch.span is not None:
                ts = self._try_span(exch, route, dep)
            try:
                return await self._attempt(call, route, dep, exch, deadline)
            except UpstreamFailure as f:
                if ts is not None:
                    ts.set_attribute("error.type", f.reason)
                self.metrics.dep_failures.labels(route.name, dep.name, f.reason).inc()
                await self.health.report(dep, False)
                last = f
                if not f.retryable:
                    break
                fresh = [d for d in self.health.available(route) if d.key not in tried]
                if fresh:
                    delay = 0.0
                elif f.retry_after is not None:
                    if f.retry_after > retry_cfg.max_retry_after_s:
                        break
                    delay = f.retry_after
                else:
                    delay = retry_cfg.backoff_s * (2**n)
                if perf_counter() + delay >= deadline:
                    break
                if delay:
                    await asyncio.sleep(delay)
            finally:
                self.health.inflight[dep.key] -= 1
                if ts is not None:
                    ts.end()
        return last

    # --- traces (only with tracing on) -------------------------------------------------------------

    def _try_span(self, exch: Exchange, route: Route, dep: Deployment) -> Any:
        """A client span for one upstream try, and the traceparent the upstream gets."""
        tr = self.tracing
        assert tr is not None
        exch.tries += 1
        ts = tr.child(
            exch.span,
            f"upstream {dep.name}",
            client=True,
            **{
                "llmops.route": route.name,
                "llmops.deployment": dep.name,
                "llmops.try": exch.tries,
                "gen_ai.request.model": dep.model,
                "server.address": dep.base_url,
            },
        )
        exch.upstream_headers = tr.headers(ts)
        return ts

    def _end_span(
        self, exch: Exchange, call: Call | None, key: ClientKey | None, outcome: Outcome | None
    ) -> None:
        """The request span's GenAI attributes (no prompt or completion text), then its end."""
        span = exch.span
        try:
            attrs: dict[str, Any] = {"llmops.retries": max(0, exch.tries - 1)}
            if key is not None:
                attrs["llmops.key"] = key.name
            if exch.extra.get("asked"):
                attrs["gen_ai.request.model"] = exch.extra["asked"]
                span.update_name(f"{span.name} {exch.extra['asked']}")
            if call is not None:
                attrs["llmops.stream"] = call.stream
                if cache := call.response_headers.get("x-llmops-cache"):
                    attrs["llmops.cache"] = cache
            if outcome is not None:
                attrs["http.response.status_code"] = outcome.status
                if outcome.route:
                    attrs["llmops.route"] = outcome.route
                if outcome.deployment:
                    attrs["llmops.deployment"] = outcome.deployment
                    dep = self._deployment(exch.live, outcome)
                    if dep is not None:
                        attrs["gen_ai.response.model"] = dep.model
                if outcome.from_stage:
                    attrs["llmops.answered_by"] = outcome.from_stage
                u = outcome.usage
                if u.input_tokens or u.output_tokens:
                    attrs["gen_ai.usage.input_tokens"] = u.input_tokens
                    attrs["gen_ai.usage.output_tokens"] = u.output_tokens
                reasons = _finish_reasons(outcome.response)
                if reasons:
                    attrs["gen_ai.response.finish_reasons"] = reasons
                if outcome.status >= 400:
                    attrs["error.type"] = outcome.error or str(outcome.status)
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR, outcome.error or None))
            span.set_attributes(attrs)
        finally:
            span.end()

    def _upstream_request(self, call: Call, dep: Deployment) -> tuple[str, dict[str, Any], bool]:
        """(path, body, strip_usage) for this deployment's API."""
        body = call.body
        if call.api in ("embeddings", "responses"):
            if dep.api == "anthropic":
                raise GatewayError(
                    400,
                    f"route '{call.route.name}' answers with the Anthropic Messages API, which has no "
                    f"/v1/{call.api}",
                    code="unsupported_api",
                )
            return UPSTREAM_PATH[call.api], {**body, "model": dep.model}, False
        if dep.api == "anthropic":
            if call.api == "messages":
                return "/messages", {**body, "model": dep.model}, False
            if call.api == "chat":
                return "/messages", chat_to_messages(body, dep.model), False
            raise GatewayError(
                400,
                f"route '{call.route.name}' answers with the Anthropic Messages API; "
                "/v1/completions is not available there (use /v1/chat/completions)",
            )
        if call.api == "messages":
            return "/chat/completions", messages_to_chat(body, dep.model), False
        out = {**body, "model": dep.model}
        strip = False
        if call.stream:
            opts = body.get("stream_options") or {}
            if not opts.get("include_usage"):
                out["stream_options"] = {**opts, "include_usage": True}
                strip = True
        return UPSTREAM_PATH[call.api], out, strip

    async def _attempt(
        self, call: Call, route: Route, dep: Deployment, exch: Exchange, deadline: float
    ) -> Outcome:
        path, body, strip = self._upstream_request(call, dep)
        raw = jsonc.dumps(body)
        if call.stream:
            return await self._stream(call, route, dep, exch, deadline, path, raw, strip)
        return await self._complete(call, route, dep, exch, deadline, path, raw)

    def _headers(
        self, call: Call, route: Route, dep: Deployment, exch: Exchange
    ) -> list[tuple[bytes, bytes]]:
        overhead = perf_counter() - exch.t0 - exch.upstream_s
        exch.overhead_s = overhead
        exch.answering = (route.name, dep.name)
        h = [
            (b"x-llmops-route", route.name.encode()),
            (b"x-llmops-deployment", dep.name.encode()),
            (b"x-llmops-overhead-ms", f"{overhead * 1000:.2f}".encode()),
            (b"x-request-id", call.request_id.encode()),
        ]
        h += [(k.encode(), v.encode()) for k, v in call.response_headers.items()]
        return h

    async def _complete(
        self,
        call: Call,
        route: Route,
        dep: Deployment,
        exch: Exchange,
        deadline: float,
        path: str,
        raw: bytes,
    ) -> Outcome:
        import aiohttp

        t_send = perf_counter()
        opened = None
        data = None
        try:
            # Without a stream the first byte is the whole answer: first_byte_s bounds each try.
            limit = min(route.timeouts.first_byte_s, deadline - t_send)
            async with asyncio.timeout(max(0.001, limit)):
                opened = await self.upstream.open(dep, path, raw, exch.upstream_headers)
                data = await opened.response.read()
        except TimeoutError:
            raise UpstreamFailure("timeout", f"no answer from '{dep.name}' in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(
                "stream_cut", f"'{dep.name}' closed the connection: {type(exc).__name__}"
            ) from None
        except UpstreamRefusal as r:
            refusal = r
        else:
            refusal = None
        finally:
            if opened is not None:
                if data is not None:
                    opened.response.release()
                else:
                    opened.close()  # cancelled or failed mid-body: drop the connection, free the engine's slot
            exch.upstream_s += perf_counter() - t_send
        if refusal is not None:
            return await self._refusal(call, route, dep, exch, refusal)
        ttft = perf_counter() - t_send
        try:
            doc = jsonc.loads(data)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError:
            raise UpstreamFailure(
                "bad_response", f"'{dep.name}' answered 200 with a body that is not JSON"
            ) from None
        if dep.api == "anthropic":
            usage = usage_from_anthropic(doc.get("usage"))
            if call.api == "chat":
                doc = message_to_chat_response(doc, call.body["model"])
                data = jsonc.dumps(doc)
        elif call.api == "responses":
            usage = usage_from_responses(doc.get("usage"))
        else:
            usage = usage_from_openai(doc.get("usage"))
            if call.api == "messages":
                doc = chat_response_to_message(doc, call.body["model"])
                data = jsonc.dumps(doc)
        await self.health.report(dep, True)
        self.health.observe_latency(dep, ttft)
        for stage in exch.live.stages if call.api != "responses" else ():
            replaced = await stage.on_response(call, doc)
            if replaced is not None:
                return await self._answer(call, replaced, exch, stage.name)
        headers = [(b"content-type", JSON), *self._headers(call, route, dep, exch)]
        await exch.send({"type": "http.response.start", "status": 200, "headers": headers})
        exch.started = exch.complete = True
        await exch.send({"type": "http.response.body", "body": data})
        return Outcome(200, True, route.name, dep.name, usage, response=doc, ttft_s=ttft)

    async def _refusal(
        self, call: Call, route: Route, dep: Deployment, exch: Exchange, r: UpstreamRefusal
    ) -> Outcome:
        """A 4xx from the upstream (bad request, context too long, content filter): the client's to see.

        A 401/403 means the gateway's own provider key was refused: a 502 naming the deployment, so the
        client does not think its key is wrong."""
        same_api = (dep.api == "anthropic") == (call.api == "messages")
        body = r.body
        if r.status in (401, 403):
            self.metrics.dep_failures.labels(route.name, dep.name, "auth").inc()
            await self.health.report(dep, False)
            r = UpstreamRefusal(
                502,
                error_body(
                    call.api,
                    502,
                    f"deployment '{dep.name}' refused the gateway's "
                    f"key (HTTP {r.status}); check {dep.api_key_env or 'its key'}",
                ),
                "application/json",
            )
            body = r.body
        else:
            await self.health.report(dep, True)  # the deployment works; the request was wrong
        if not same_api or not body:
            msg = f"upstream answered {r.status}"
            try:
                d = json.loads(body)
                err = d.get("error") if isinstance(d, dict) else None
                msg = (err.get("message") if isinstance(err, dict) else None) or msg
            except ValueError:
                pass
            body = error_body(call.api, r.status, msg)
        headers = [(b"content-type", JSON), *self._headers(call, route, dep, exch)]
        await exch.send({"type": "http.response.start", "status": r.status, "headers": headers})
        exch.started = exch.complete = True
        await exch.send({"type": "http.response.body", "body": body})
        return Outcome(r.status, False, route.name, dep.name, error=f"status_{r.status}")

    def _relay(self, call: Call, dep: Deployment, strip: bool) -> Relay:
        if call.api == "responses":
            return ResponsesPassthrough(None)
        asm = Assembler(call.api) if call.capture else None
        if dep.api == "anthropic":
            if call.api == "messages":
                return AnthropicPassthrough(asm)
            include = bool((call.body.get("stream_options") or {}).get("include_usage"))
            return Translating(asm, MessagesToChatStream(call.body["model"], include))
        if call.api == "messages":
            return Translating(asm, ChatToMessagesStream(call.body["model"]))
        return OpenAIPassthrough(asm, strip, count=dep.key not in self._stream_usage)

    async def _stream(
        self,
        call: Call,
        route: Route,
        dep: Deployment,
        exch: Exchange,
        deadline: float,
        path: str,
        raw: bytes,
        strip: bool,
    ) -> Outcome:
        import aiohttp

        t = route.timeouts
        loop = asyncio.get_running_loop()
        t_send = perf_counter()
        deadline_loop = loop.time() + (deadline - t_send)
        relay = self._relay(call, dep, strip)
        framer = Framer()
        opened = None
        first = b""
        ttft: float | None = None
        failure: tuple[str, str] | None = None
        relay_span = None
        try:
            async with Deadline(min(loop.time() + t.first_byte_s, deadline_loop)) as tm:
                try:
                    opened = await self.upstream.open(dep, path, raw, exch.upstream_headers)
                except UpstreamRefusal as r:
                    exch.upstream_s += perf_counter() - t_send
                    return await self._refusal(call, route, dep, exch, r)
                content = opened.response.content
                while not first:
                    data = await content.readany()
                    if not data:
                        raise UpstreamFailure("stream_cut", f"'{dep.name}' ended the stream before any event")
                    first = framer.feed(data)
                if not looks_like_sse(first):
                    raise UpstreamFailure(
                        "bad_response", f"'{dep.name}' answered 200 with something that is not a stream"
                    )
                t_first = perf_counter()
                exch.upstream_s += t_first - t_send
                out = relay.process(first)
                if relay.events:  # time to first token: the first event with content, not the first byte
                    ttft = t_first - t_send
                if relay.error is not None and not relay.events:
                    raise UpstreamFailure(
                        "bad_response", f"'{dep.name}' sent an error event: {relay.error.get('message')}"
                    )
                headers = [*SSE_HEADERS, *self._headers(call, route, dep, exch)]
                tm.move(None)  # a slow client is not the upstream stalling
                await exch.send({"type": "http.response.start", "status": 200, "headers": headers})
                exch.started = True
                if exch.span is not None:  # tracing on: the stream from the first byte to its end
                    relay_span = self.tracing.child(exch.span, "relay")  # type: ignore[union-attr]
                send = exch.send
                # The block that holds the end marker goes out as the last body message (one write less).
                if out or relay.finished:
                    done = relay.finished and relay.error is None
                    if done:
                        out += relay.end()
                        exch.complete = True
                    await send({"type": "http.response.body", "body": out, "more_body": not done})
                stall_s = t.stall_s
                while not relay.finished:
                    tm.move(min(loop.time() + stall_s, deadline_loop))
                    data = await content.readany()
                    tm.move(None)
                    if not data:
                        break
                    block = framer.feed(data)
                    if block:
                        out = relay.process(block)
                        if ttft is None and relay.events:
                            ttft = perf_counter() - t_send
                        done = relay.finished and relay.error is None
                        if done:
                            out += relay.end()
                            exch.complete = True
                        if out or done:
                            await send({"type": "http.response.body", "body": out, "more_body": not done})
                if not relay.finished:
                    failure = ("stream_cut", f"'{dep.name}' ended the stream without its final event")
                elif relay.error is not None:
                    failure = ("stream_error", f"'{dep.name}' sent an error: {relay.error.get('message')}")
        except TimeoutError:
            if not exch.started:
                what = "first byte" if perf_counter() < deadline else "the request deadline"
                exch.upstream_s += perf_counter() - t_send
                raise UpstreamFailure("timeout", f"no {what} from '{dep.name}' in time") from None
            late = loop.time() >= deadline_loop - 0.001
            failure = (
                ("timeout", "the request deadline passed")
                if late
                else ("stall", f"'{dep.name}' went silent for {t.stall_s:g} s mid-stream")
            )
        except aiohttp.ClientError as exc:
            if not exch.started:
                exch.upstream_s += perf_counter() - t_send
                raise UpstreamFailure(
                    "stream_cut", f"'{dep.name}' cut the stream: {type(exc).__name__}"
                ) from None
            failure = ("stream_cut", f"'{dep.name}' cut the stream: {type(exc).__name__}")
        finally:
            if opened is not None:
                if relay.finished and not framer.pending:
                    opened.response.release()
                else:
                    opened.close()
            if relay_span is not None:
                relay_span.end()
        if failure is not None:
            reason, detail = failure
            self.metrics.dep_failures.labels(route.name, dep.name, reason).inc()
            await self.health.report(dep, False)
            status = 504 if reason in ("timeout", "stall") else 502
            exch.complete = True
            await exch.send(
                {
                    "type": "http.response.body",
                    "more_body": False,
                    "body": stream_error_event(call.api, status, detail, code=reason),
                }
            )
            usage = relay.usage or Usage()
            return Outcome(status, False, route.name, dep.name, usage, error=reason, ttft_s=ttft)
        await self.health.report(dep, True)
        if ttft is not None:
            self.health.observe_latency(dep, ttft)
        if relay.usage is not None and relay.usage.reported:
            usage = relay.usage
            self._stream_usage.add(dep.key)
        else:
            usage = Usage(output_tokens=relay.output_estimate)
        response = relay.assembler.result() if relay.assembler is not None else None
        return Outcome(200, True, route.name, dep.name, usage, response=response, ttft_s=ttft)

    # --- answers the gateway gives itself ---------------------------------------------------------

    async def _answer(self, call: Call, reply: Reply, exch: Exchange, stage: str) -> Outcome:
        """A stage's reply: an error in the client's shape, or a complete response (streamed if asked)."""
        extra = [(k.encode(), v.encode()) for k, v in {**call.response_headers, **reply.headers}.items()]
        extra.append((b"x-request-id", call.request_id.encode()))
        if reply.doc is None:
            body = json.dumps(
                error_doc(call.api, reply.status, reply.message or "refused", etype=reply.error_type)
            ).encode()
            await self._send(exch, reply.status, [(b"content-type", JSON), *extra], body)
            return Outcome(
                reply.status,
                False,
                call.route.name,
                None,
                error=f"{stage}:{reply.error_type}",
                from_stage=stage,
            )
        usage = (usage_from_anthropic if call.api == "messages" else usage_from_openai)(
            reply.doc.get("usage")
        )
        exch.overhead_s = perf_counter() - exch.t0
        if call.stream:
            include = call.api == "messages" or bool(
                (call.body.get("stream_options") or {}).get("include_usage")
            )
            await self._send(exch, 200, [*SSE_HEADERS, *extra], replay(call.api, reply.doc, include))
        else:
            await self._send(exch, 200, [(b"content-type", JSON), *extra], jsonc.dumps(reply.doc))
        return Outcome(
            200,
            True,
            call.route.name,
            None,
            usage,
            response=reply.doc,
            from_stage=stage,
            ttft_s=exch.overhead_s,
        )

    async def _send(self, exch: Exchange, status: int, headers: list, body: bytes) -> None:
        await exch.send({"type": "http.response.start", "status": status, "headers": headers})
        exch.started = exch.complete = True
        await exch.send({"type": "http.response.body", "body": body})

    async def _send_error(self, api: Api, exch: Exchange, exc: GatewayError) -> None:
        if exch.client_gone:
            return
        if exch.started:  # headers are out (a stage failed late): end the stream with an error event
            exch.complete = True
            await exch.send(
                {
                    "type": "http.response.body",
                    "more_body": False,
                    "body": stream_error_event(api, exc.status, exc.message, code=exc.code),
                }
            )
            return
        headers = [(b"content-type", JSON), *((k.encode(), v.encode()) for k, v in exc.headers.items())]
        body = error_body(api, exc.status, exc.message, code=exc.code, param=exc.param)
        await self._send(exch, exc.status, headers, body)

    # --- accounting ------------------------------------------------------------------------------

    async def _account(
        self, call: Call | None, key: ClientKey | None, outcome: Outcome, exch: Exchange, api: str
    ) -> None:
        try:
            outcome.duration_s = perf_counter() - exch.t0
            m = self.metrics
            model = call.route.name if call is not None else "-"
            status = outcome.status
            m.finished(model, status, outcome.duration_s)
            if call is None:  # refused before routing (auth, bad input, unknown route): one line all the same
                self.usage.add(
                    {
                        "time": utc_now_ms(),
                        "key": key.name if key else None,
                        "api": api,
                        "route": None,
                        "asked": exch.extra.get("asked"),
                        "deployment": None,
                        "status": status,
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cost_usd": 0.0,
                        "latency_ms": round(outcome.duration_s * 1000, 2),
                        "error": outcome.error,
                    }
                )
                return
            dep = self._deployment(exch.live, outcome)
            u = outcome.usage
            if not u.reported and outcome.deployment is not None:
                u.input_tokens = u.input_tokens or max(
                    1, (exch.held.estimate if exch.held else 0) - int(call.body.get("max_tokens") or 256)
                )
            if dep is not None and outcome.from_stage is None:
                outcome.cost_usd = dep.cost(u.input_tokens, u.output_tokens, u.cached_tokens)
            if outcome.from_stage is None and (u.input_tokens or u.output_tokens):
                m.child(m.tokens, model, "input").inc(u.input_tokens)
                m.child(m.tokens, model, "output").inc(u.output_tokens)
            if outcome.cost_usd:
                m.child(m.cost, model).inc(outcome.cost_usd)
            if outcome.ttft_s is not None and outcome.route:
                m.child(m.ttft, outcome.route).observe(outcome.ttft_s)
            if exch.overhead_s is not None:
                m.child(m.overhead, outcome.route or model).observe(exch.overhead_s)
            if exch.held is not None and outcome.from_stage is None:
                await self.limiter.settle(key, exch.held, u.input_tokens + u.output_tokens, outcome.cost_usd)
            record: dict[str, Any] = {
                "time": utc_now_ms(),
                "request_id": call.request_id,
                "key": call.key_name,
                "api": call.api,
                "route": outcome.route or model,
                "asked": call.body.get("model"),
                "deployment": outcome.deployment,
                "stream": call.stream,
                "status": status,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cached_tokens": u.cached_tokens,
                "usage": "reported" if u.reported else "estimated",
                "cost_usd": round(outcome.cost_usd, 8),
                "latency_ms": round(outcome.duration_s * 1000, 2),
                "ttft_ms": round(outcome.ttft_s * 1000, 2) if outcome.ttft_s is not None else None,
                "error": outcome.error,
            }
            if outcome.from_stage:
                record["answered_by"] = outcome.from_stage
            if exch.live.section.log_prompts:
                record["request"] = call.body
            self.usage.add(record)
            for stage in exch.live.stages if call.api != "responses" else ():
                await stage.on_complete(call, outcome)
        except Exception:  # accounting must never take a request (or the gateway) down with it
            import logging

            logging.getLogger("llmops.gateway").exception("accounting failed")

    def _deployment(self, live: Live, outcome: Outcome) -> Deployment | None:
        if outcome.route is None or outcome.deployment is None:
            return None
        return live.deps.get((outcome.route, outcome.deployment))

    # --- small endpoints ---------------------------------------------------------------------------

    def models(self, headers: dict[str, str]) -> dict[str, Any]:
        key = self.auth.check(headers)
        names = [n for n in self.live.table.routes if key is None or key.may_use(n)]
        return {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": "llmops"} for n in names],
        }

    async def ready(self) -> dict[str, Any]:
        await self.health.sync()
        routes = self.health.ready(self.live.table)
        return {"ready": all(routes.values()) and not self.draining, "routes": routes, "time": time.time()}
