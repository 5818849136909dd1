"""The local runner: send batch requests to any OpenAI-compatible server, concurrently, politely.

Concurrency limit, RPM/TPM limits, retries with exponential backoff and jitter that honour Retry-After,
a per-request timeout. Each finished request goes to `on_done` (the journal) as an OpenAI output line.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from llmops.batch.convert import error_line
from llmops.batch.cost import estimate_tokens
from llmops.batch.models import OutputLine, RequestLine, ResponsePart
from llmops.batch.retry import (
    RETRY_AFTER_STATUS,
    RETRYABLE_STATUS,
    RateLimiter,
    parse_retry_after,
    retry_delay,
)
from llmops.progress import NullProgress, ProgressReporter


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


def endpoint_url(base_url: str, url: str) -> str:
    """Join a base URL (usually ending in /v1) and a batch line's url (/v1/chat/completions)."""
    base = base_url.rstrip("/")
    if base.endswith("/v1") and url.startswith("/v1/"):
        return base + url[3:]
    return base + url


def _body_of(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {"error": {"message": resp.text[:2000], "type": "invalid_response"}}
    return data if isinstance(data, dict) else {"data": data}


class Runner:
    def __init__(
        self,
        cfg: RunnerConfig,
        *,
        on_done: Callable[[int, OutputLine], None],
        should_stop: Callable[[], bool] = lambda: False,
        progress: ProgressReporter | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.cfg = cfg
        self.on_done = on_done
        self.should_stop = should_stop
        self.progress = progress or NullProgress()
        self.limiter = RateLimiter(cfg.rpm, cfg.tpm)
        self.rng = random.Random(cfg.seed)
        self.sleep = sleep
        self.ok = 0
        self.failed = 0
        self.stopped = False

    def run(self, requests: list[tuple[int, RequestLine]], *, total: int, already: int = 0) -> None:
        """Send these (input index, request) pairs; blocks until all are done or the job is cancelled."""
        asyncio.run(self._run(requests, total=total, already=already))

    async def _run(self, requests: list[tuple[int, RequestLine]], *, total: int, already: int) -> None:
        queue: asyncio.Queue[tuple[int, RequestLine]] = asyncio.Queue()
        for item in requests:
            queue.put_nowait(item)
        headers = {"Authorization": f"Bearer {self.cfg.api_key}"} if self.cfg.api_key else {}
        limits = httpx.Limits(
            max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency
        )
        self._start = time.monotonic()
        self._total, self._remaining = total, len(requests)
        self.progress.start(total, "batch")
        if already:
            self.progress.update(already)
        try:
            async with httpx.AsyncClient(
                headers=headers, limits=limits, timeout=self.cfg.timeout_s
            ) as client:
                workers = [
                    asyncio.create_task(self._worker(client, queue))
                    for _ in range(min(self.cfg.concurrency, max(1, len(requests))))
                ]
                await asyncio.gather(*workers)
        finally:
            self.progress.finish()

    async def _worker(self, client: httpx.AsyncClient, queue: asyncio.Queue[tuple[int, RequestLine]]) -> None:
        while not queue.empty():
            if self.should_stop():
                self.stopped = True
                return
            seq, request = queue.get_nowait()
            line = await self._send(client, request)
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

    async def _send(self, client: httpx.AsyncClient, request: RequestLine) -> OutputLine:
        url = endpoint_url(self.cfg.base_url, request.url)
        tokens = sum(estimate_tokens(request.body))
        last_response: httpx.Response | None = None
        last_error = ""
        for attempt in range(self.cfg.max_retries + 1):
            await self.limiter.acquire(tokens)
            retry_after = None
            try:
                resp = await client.post(url, json=request.body, timeout=self.cfg.timeout_s)
            except httpx.TimeoutException:
                last_response, last_error = None, f"no response within {self.cfg.timeout_s:g}s"
            except httpx.TransportError as exc:
                last_response, last_error = None, f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300 or resp.status_code not in RETRYABLE_STATUS:
                    return self._line(request, resp)
                last_response = resp
                if resp.status_code in RETRY_AFTER_STATUS:
                    retry_after = parse_retry_after(resp.headers)
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
        if last_response is not None:
            return self._line(request, last_response)
        return error_line(
            request.custom_id,
            "request_failed",
            f"{last_error} after {self.cfg.max_retries + 1} attempts",
            "local",
        )

    @staticmethod
    def _line(request: RequestLine, resp: httpx.Response) -> OutputLine:
        request_id = resp.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
        return OutputLine(
            id=f"batch_req_{uuid.uuid4().hex[:24]}",
            custom_id=request.custom_id,
            response=ResponsePart(status_code=resp.status_code, request_id=request_id, body=_body_of(resp)),
        )
