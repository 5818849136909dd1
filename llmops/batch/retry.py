"""Retry timing and rate limits for the local runner: pure timing math plus a small async limiter."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
RETRY_AFTER_STATUS = frozenset({429, 503, 529})


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date); None if absent."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * (2**attempt))
    return ceiling * (0.5 + rng.random() / 2)


def retry_delay(
    attempt: int, retry_after: float | None, *, base: float, cap: float, rng: random.Random
) -> float:
    """Wait at least what the server asked for (Retry-After), else back off; a little jitter either way."""
    if retry_after is not None:
        return retry_after + rng.uniform(0, min(0.25, base))
    return backoff_delay(attempt, base=base, cap=cap, rng=rng)


class RateLimiter:
    """Requests- and tokens-per-minute over a sliding 60 s window; None means unlimited."""

    WINDOW = 60.0

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self._events: deque[tuple[float, int]] = deque()
        self._tokens = 0
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if self.rpm is None and self.tpm is None:
            return
        if self.tpm is not None:
            tokens = min(tokens, self.tpm)
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= self.WINDOW:
                    self._tokens -= self._events.popleft()[1]
                rpm_ok = self.rpm is None or len(self._events) < self.rpm
                tpm_ok = self.tpm is None or self._tokens + tokens <= self.tpm
                if rpm_ok and tpm_ok:
                    self._events.append((now, tokens))
                    self._tokens += tokens
                    return
                await asyncio.sleep(max(0.01, self._events[0][0] + self.WINDOW - now))
