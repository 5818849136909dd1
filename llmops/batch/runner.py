"""The local runner: send batch requests to any OpenAI-compatible server, concurrently, politely.

Concurrency limit, RPM/TPM limits, retries with exponential backoff and jitter that honour Retry-After,
a per-request timeout. Each finished request goes to `on_done` (the journal) as an OpenAI output line.

Two ways a run stops early, both keeping every result that finished:
- the endpoint refuses connections: one breaker for the whole run stops sending, probes the endpoint
  until it answers again or `endpoint_wait_s` has passed, then carries on or ends with "endpoint_down";
  a request refused this way is not a result, it is sent again later (now or on resume);
- SIGINT/SIGTERM: no new request starts, the ones in flight finish within `drain_s` and are journaled;
  a second signal stops at once (those in flight are then sent again on resume).
The HTTP client is aiohttp: its pool keeps up with hundreds of requests a second where httpx's does not.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from llmops.batch.convert import error_line
from llmops.batch.cost import estimate_tokens
from llmops.batch.endpoint import endpoint_url, split_credentials
from llmops.batch.models import OutputLine, ResponsePart
from llmops.batch.retry import (
    RETRY_AFTER_STATUS,
    RETRYABLE_STATUS,
    RateLimiter,
    parse_retry_after,
    retry_delay,
)
from llmops.progress import NullProgress, ProgressReporter
from llmops.prompts import RequestLine

Outcome = Literal["done", "cancelled", "signal", "endpoint_down"]
CONNECT_TIMEOUT_S = 10.0


@dataclass
class RunnerConfig:
    base_url: str
    concurrency: int = 8
    timeout_s: float = 300.0
    max_retries: int = 6
    backoff_s: float = 1.0
    backoff_cap_s: float = 60.0
    rpm: int | None = None
    tpm: int | None = None
    api_key: str | None = None
    seed: int | None = None
    endpoint_wait_s: float = 10.0
    probe_interval_s: float = 0.5
    drain_s: float = 30.0


class Breaker:
    """One circuit for the whole run: a refused connection opens it and every worker waits; a probe asks
    the endpoint every interval until it answers (closed again) or the wait runs out (given up)."""

    def __init__(self, wait_s: float, interval_s: float, probe: Callable[[], Awaitable[bool]]) -> None:
        self.wait_s, self.interval_s, self.probe = wait_s, interval_s, probe
        self.state: Literal["closed", "open", "gave_up"] = "closed"
        self.reason = ""
        self._event = asyncio.Event()
        self._event.set()
        self._task: asyncio.Task | None = None

    def trip(self, reason: str) -> None:
        if self.state != "closed":
            return
        self.state, self.reason = "open", reason
        self._event.clear()
        self._task = asyncio.create_task(self._probe_until(time.monotonic() + self.wait_s))

    async def _probe_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.state = "gave_up"
                break
            await asyncio.sleep(min(self.interval_s, remaining))
            if await self.probe():
                self.state = "closed"
                break
        self._event.set()

    async def wait(self) -> bool:
        """Block while open; True when requests may flow again."""
        await self._event.wait()
        return self.state == "closed"

    def wake(self) -> None:
        """Let waiting workers go (they see why the run is stopping)."""
        self._event.set()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Runner:
    def __init__(
        self,
        cfg: RunnerConfig,
        *,
        on_done: Callable[[int, OutputLine], None],
        should_stop: Callable[[], bool] = lambda: False,
        on_notice: Callable[[str], None] = lambda text: None,
        progress: ProgressReporter | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.cfg = cfg
        self.on_done = on_done
        self.should_stop = should_stop
        self.on_notice = on_notice
        self.progress = progress or NullProgress()
        self.limiter = RateLimiter(cfg.rpm, cfg.tpm)
        self.rng = random.Random(cfg.seed)
        self.sleep = sleep
        self.ok = 0
        self.failed = 0
        self.in_flight = 0
        self.dropped = 0  # in flight when the workers were stopped (second signal, drain timeout)
        self.stop_reason: Outcome | None = None
        self.breaker: Breaker | None = None
        self._workers: list[asyncio.Task] = []

    def run(self, requests: list[tuple[int, RequestLine]], *, total: int, already: int = 0) -> Outcome:
        """Send these (input index, request) pairs; returns why the run ended."""
        return asyncio.run(self._run(requests, total=total, already=already))

    async def _run(self, requests: list[tuple[int, RequestLine]], *, total: int, already: int) -> Outcome:
        import aiohttp

        queue: asyncio.Queue[tuple[int, RequestLine]] = asyncio.Queue()
        for item in requests:
            queue.put_nowait(item)
        bare, userinfo = split_credentials(self.cfg.base_url)
        self._base = bare or ""
        headers = {"Authorization": f"Bearer {self.cfg.api_key}"} if self.cfg.api_key else {}
        if userinfo:
            headers["Authorization"] = basic_auth(userinfo)
        connector = aiohttp.TCPConnector(limit=self.cfg.concurrency)
        self._start = time.monotonic()
        self._remaining = len(requests)
        self.progress.start(total, "batch")
        if already:
            self.progress.update(already)
        loop = asyncio.get_running_loop()
        handled = self._catch_signals(loop)
        try:
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
                self.breaker = Breaker(
                    self.cfg.endpoint_wait_s, self.cfg.probe_interval_s, lambda: self._probe(session)
                )
                self._workers = [
                    asyncio.create_task(self._worker(session, queue))
                    for _ in range(min(self.cfg.concurrency, max(1, len(requests))))
                ]
                try:
                    await _first_error(self._workers)
                finally:
                    self.breaker.stop()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            self.progress.finish()
        return self.stop_reason or "done"

    # --- stopping ----------------------------------------------------------------------------
    def _catch_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            handled.append(sig)
        return handled

    def _on_signal(self, sig: int) -> None:
        if self.stop_reason == "signal":
            self.on_notice("stopping now; requests in flight will be sent again on resume")
            self._cancel_workers()
            return
        self.stop_reason = "signal"
        if self.breaker is not None:
            self.breaker.wake()
        if self.in_flight:
            self.on_notice(
                f"finishing the {self.in_flight} request(s) in flight (up to {self.cfg.drain_s:g}s); "
                "press Ctrl-C again to stop now"
            )
        asyncio.get_running_loop().call_later(self.cfg.drain_s, self._cancel_workers)

    def _cancel_workers(self) -> None:
        self.dropped = self.in_flight
        for task in self._workers:
            task.cancel()

    # --- sending -------------------------------------------------------------------------------
    async def _worker(self, session: Any, queue: asyncio.Queue[tuple[int, RequestLine]]) -> None:
        assert self.breaker is not None
        while self.stop_reason is None:
            if self.should_stop():
                self.stop_reason = "cancelled"
                return
            if not await self.breaker.wait():
                self.stop_reason = self.stop_reason or "endpoint_down"
                return
            try:
                seq, request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self.in_flight += 1
            try:
                line = await self._send(session, request)
            finally:
                self.in_flight -= 1
            if line is None:  # the endpoint refused: not a result; sent again once it answers
                queue.put_nowait((seq, request))
                continue
            self.on_done(seq, line)
            if line.ok:
                self.ok += 1
            else:
                self.failed += 1
            self._remaining -= 1
            elapsed = max(1e-9, time.monotonic() - self._start)
            rate = (self.ok + self.failed) / elapsed
            eta = f"{self._remaining / rate:.0f}s" if rate > 0 else "?"
            self.progress.update(1, ok=self.ok, failed=self.failed, rate=f"{rate:.1f}/s", eta=eta)

    async def _send(self, session: Any, request: RequestLine) -> OutputLine | None:
        """The request's output line after retries, or None when the endpoint refused the connection."""
        import aiohttp

        assert self.breaker is not None
        url = endpoint_url(self._base, request.url)
        data = json.dumps(request.body).encode()
        tokens = sum(estimate_tokens(request.body))
        timeout = aiohttp.ClientTimeout(
            total=self.cfg.timeout_s, sock_connect=min(self.cfg.timeout_s, CONNECT_TIMEOUT_S)
        )
        last: tuple[int, Any, bytes] | None = None
        last_error = ""
        for attempt in range(self.cfg.max_retries + 1):
            await self.limiter.acquire(tokens)
            retry_after = None
            try:
                async with session.post(
                    url, data=data, headers={"Content-Type": "application/json"}, timeout=timeout
                ) as resp:
                    payload = await resp.read()
                    status, headers = resp.status, resp.headers
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                self.breaker.trip(f"{type(exc).__name__}: {exc}")
                return None
            except TimeoutError:
                last, last_error = None, f"no response within {self.cfg.timeout_s:g}s"
            except aiohttp.ClientError as exc:
                last, last_error = None, f"{type(exc).__name__}: {exc}"
            else:
                if status < 300 or status not in RETRYABLE_STATUS:
                    return self._line(request, status, headers, payload)
                last = (status, headers, payload)
                if status in RETRY_AFTER_STATUS:
                    retry_after = parse_retry_after(headers)
            if attempt < self.cfg.max_retries:
                await self.sleep(
                    retry_delay(
                        attempt,
                        retry_after,
                        base=self.cfg.backoff_s,
                        cap=self.cfg.backoff_cap_s,
                        rng=self.rng,
                    )
                )
        if last is not None:
            return self._line(request, *last)
        return error_line(
            request.custom_id,
            "request_failed",
            f"{last_error} after {self.cfg.max_retries + 1} attempts",
            "local",
        )

    async def _probe(self, session: Any) -> bool:
        """Does the endpoint answer at all (any HTTP status)?"""
        import aiohttp

        try:
            async with session.get(
                self._base, timeout=aiohttp.ClientTimeout(total=max(1.0, self.cfg.probe_interval_s * 4))
            ) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            return False
        return True

    @staticmethod
    def _line(request: RequestLine, status: int, headers: Any, payload: bytes) -> OutputLine:
        request_id = headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
        return OutputLine(
            id=f"batch_req_{uuid.uuid4().hex[:24]}",
            custom_id=request.custom_id,
            response=ResponsePart(status_code=status, request_id=request_id, body=_body_of(payload)),
        )


def basic_auth(userinfo: str) -> str:
    """The Authorization header for a URL's `user:pass` (percent-encoding undone)."""
    user, _, password = userinfo.partition(":")
    raw = f"{unquote(user)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def _first_error(tasks: list[asyncio.Task]) -> None:
    """Wait for every task; the first one to fail cancels the others and its error is raised."""
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        raise failed[0].exception()  # type: ignore[misc]


def _body_of(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError:
        return {"error": {"message": payload[:2000].decode(errors="replace"), "type": "invalid_response"}}
    return data if isinstance(data, dict) else {"data": data}
