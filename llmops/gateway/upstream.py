"""Calling a deployment: one pooled aiohttp session per process, failures sorted into retryable reasons.

Provider keys are read from their variables once, kept in this object, and sent only upstream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from llmops.gateway.table import Deployment

ANTHROPIC_VERSION = "2023-06-01"
USER_AGENT = "llmops-gateway"
RETRYABLE = frozenset(
    {"connect", "timeout", "status_429", "status_5xx", "bad_response", "stream_cut", "stall"}
)


class UpstreamFailure(Exception):
    """A try that failed before anything reached the client; `reason` is the metric label."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE


class UpstreamRefusal(Exception):
    """A 4xx (not 429) from the upstream: the request itself is wrong; passed to the client, not retried."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.body = body
        self.content_type = content_type


def retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import time
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class Opened:
    """A 2xx response whose body is not read yet."""

    response: Any  # aiohttp.ClientResponse

    def close(self) -> None:
        """Drop the connection (not back to the pool): the engine sees the disconnect and frees the slot."""
        self.response.close()


class Upstream:
    def __init__(self, connect_s: float = 5.0, environ: dict[str, str] | None = None) -> None:
        self.connect_s = connect_s
        self.env = dict(os.environ if environ is None else environ)
        self.session: Any = None
        self._headers: dict[str, Any] = {}
        self._urls: dict[tuple[str, str], Any] = {}  # parsed once per deployment and path
        self.trace: Any = None  # llmops.gateway.looplag.LagTrace when tracing loop lag

    async def start(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_s),
            auto_decompress=False,  # bytes pass through as they came (we ask for identity encoding)
            cookie_jar=aiohttp.DummyCookieJar(),  # upstream cookies are never relayed: skip the jar's work
            trace_configs=[self._connect_trace()] if self.trace is not None else None,
        )

    def _connect_trace(self) -> Any:
        """Upstream connections opened, and the time it took, for the loop-lag trace."""
        import aiohttp

        trace, started = self.trace, {}

        async def begin(_s: Any, ctx: Any, _p: Any) -> None:
            started[id(ctx)] = perf_counter()

        async def end(_s: Any, ctx: Any, _p: Any) -> None:
            trace.add("upstream_connects")
            trace.add("upstream_connect_s", perf_counter() - started.pop(id(ctx), perf_counter()))

        tc = aiohttp.TraceConfig()
        tc.on_connection_create_start.append(begin)
        tc.on_connection_create_end.append(end)
        return tc

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def missing_key(self, dep: Deployment) -> str | None:
        """The variable a deployment needs but the gateway's environment lacks."""
        if dep.api_key_env and not self.env.get(dep.api_key_env):
            return dep.api_key_env
        return None

    def headers(self, dep: Deployment) -> Any:
        """The request headers of a deployment, built once as the multidict aiohttp would build each time.

        They name every header aiohttp would otherwise add itself (accept, accept-encoding, user-agent), so
        it adds none per request; `accept-encoding: identity` because the body is relayed undecoded (an
        upstream asked for gzip would send bytes neither the gateway nor the client could read)."""
        h = self._headers.get(dep.key)
        if h is None:
            from multidict import CIMultiDict

            h = CIMultiDict(
                {
                    "content-type": "application/json",
                    "accept": "*/*",
                    "accept-encoding": "identity",
                    "user-agent": USER_AGENT,
                }
            )
            key = self.env.get(dep.api_key_env) if dep.api_key_env else None
            if dep.api == "anthropic":
                h["anthropic-version"] = ANTHROPIC_VERSION
                if key:
                    h["x-api-key"] = key
            elif key:
                h["authorization"] = f"Bearer {key}"
            self._headers[dep.key] = h
        return h

    def forget(self, keys: set[str]) -> None:
        """Drop the headers and URLs built for these deployments (a reload changed or removed them)."""
        for key in keys:
            self._headers.pop(key, None)
        for k in [k for k in self._urls if k[0] in keys]:
            del self._urls[k]

    async def open(
        self, dep: Deployment, path: str, body: bytes, extra: dict[str, str] | None = None
    ) -> Opened:
        """POST and wait for the status line; 2xx -> Opened, else UpstreamFailure / UpstreamRefusal."""
        import aiohttp

        url = self._urls.get((dep.key, path))
        if url is None:
            from yarl import URL

            url = self._urls[(dep.key, path)] = URL(dep.url_for(path))
        try:
            headers = self.headers(dep)
            if extra is not None:  # a traceparent for this try (tracing on)
                headers = headers.copy()
                headers.update(extra)
            resp = await self.session.post(url, data=body, headers=headers)
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, ConnectionError) as exc:
            raise UpstreamFailure("connect", f"cannot connect: {type(exc).__name__}") from None
        except TimeoutError:
            raise UpstreamFailure("connect", "connect timed out") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailure("connect", f"{type(exc).__name__}: {exc}") from None
        status = resp.status
        if 200 <= status < 300:
            return Opened(resp)
        try:
            body_bytes = await resp.read()
        except aiohttp.ClientError:
            body_bytes = b""
        finally:
            resp.close()
        if status == 429:
            raise UpstreamFailure(
                "status_429",
                "rate limited upstream",
                status=429,
                retry_after=retry_after_s(resp.headers.get("retry-after")),
                body=body_bytes,
            )
        if status >= 500:
            raise UpstreamFailure(
                "status_5xx",
                f"upstream answered {status}",
                status=status,
                retry_after=retry_after_s(resp.headers.get("retry-after")),
                body=body_bytes,
            )
        raise UpstreamRefusal(status, body_bytes, resp.headers.get("content-type", "application/json"))
