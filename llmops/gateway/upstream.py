"""Calling a deployment: one pooled HTTP client per process, failures sorted into retryable reasons.

Provider keys are read from their variables once, kept in this object, and sent only upstream.
"""

from __future__ import annotations

import os

from llmops.gateway.http1 import Client, Prepared, Response, UpstreamClosed
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


class Upstream:
    """Calls deployments through one pooled HTTP/1.1 client (llmops.gateway.http1)."""

    def __init__(self, connect_s: float = 5.0, environ: dict[str, str] | None = None) -> None:
        self.connect_s = connect_s
        self.env = dict(os.environ if environ is None else environ)
        self.client: Client | None = None
        self._prepared: dict[tuple[str, str], Prepared] = {}  # per deployment and path, built once

    async def start(self) -> None:
        self.client = Client(self.connect_s)

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def missing_key(self, dep: Deployment) -> str | None:
        """The variable a deployment needs but the gateway's environment lacks."""
        if dep.api_key_env and not self.env.get(dep.api_key_env):
            return dep.api_key_env
        return None

    def headers(self, dep: Deployment) -> dict[str, str]:
        """A deployment's request headers (with its key). `accept-encoding: identity` because the body is
        relayed undecoded: a compressed answer would be bytes neither the gateway nor the client read."""
        h = {
            "content-type": "application/json",
            "accept": "*/*",
            "accept-encoding": "identity",
            "user-agent": USER_AGENT,
        }
        key = self.env.get(dep.api_key_env) if dep.api_key_env else None
        if dep.api == "anthropic":
            h["anthropic-version"] = ANTHROPIC_VERSION
            if key:
                h["x-api-key"] = key
        elif key:
            h["authorization"] = f"Bearer {key}"
        return h

    async def open(self, dep: Deployment, path: str, body: bytes) -> Response:
        """POST and wait for the status line; 2xx -> the response, body unread; else UpstreamFailure /
        UpstreamRefusal. The caller must `release()` (reuse) or `close()` (drop) the response."""
        assert self.client is not None, "Upstream.start() first"
        prepared = self._prepared.get((dep.key, path))
        if prepared is None:
            prepared = self._prepared[(dep.key, path)] = self.client.prepare(
                dep.url_for(path), self.headers(dep)
            )
        try:
            resp = await self.client.post(prepared, body)
        except TimeoutError:
            raise UpstreamFailure("connect", "connect timed out") from None
        except OSError as exc:
            raise UpstreamFailure("connect", f"cannot connect: {type(exc).__name__}") from None
        except UpstreamClosed as exc:
            raise UpstreamFailure("connect", str(exc)) from None
        status = resp.status
        if 200 <= status < 300:
            return resp
        try:
            body_bytes = await resp.read()
        except UpstreamClosed:
            body_bytes = b""
        finally:
            resp.release()
        retry_after = retry_after_s(resp.headers.get("retry-after"))
        if status == 429:
            raise UpstreamFailure(
                "status_429", "rate limited upstream", status=429, retry_after=retry_after, body=body_bytes
            )
        if status >= 500:
            raise UpstreamFailure(
                "status_5xx",
                f"upstream answered {status}",
                status=status,
                retry_after=retry_after,
                body=body_bytes,
            )
        raise UpstreamRefusal(status, body_bytes, resp.headers.get("content-type", "application/json"))
