"""One timer per try for a limit that moves with every chunk (first byte, then stall between chunks).

`asyncio.timeout(...).reschedule()` cancels its timer handle and creates a new one on every call; a
stream that moves its stall limit before and after each chunk would do that twice per chunk. Here moving
the limit is a float store: the timer stays armed at the earliest limit set, and when it fires it re-arms
itself at the current limit if that one is later. Expiry cancels the task and surfaces as TimeoutError,
as `asyncio.timeout` does (a cancellation from elsewhere, such as a client disconnect, passes through).
"""

from __future__ import annotations

import asyncio
from typing import Any


class Deadline:
    __slots__ = ("_armed_at", "_cancelling", "_handle", "_loop", "_task", "expired", "when")

    def __init__(self, when: float | None) -> None:
        self.when = when  # loop.time() at which the try fails; None: no limit now
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._cancelling = 0

    async def __aenter__(self) -> Deadline:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        if self.when is not None:
            self._arm(self.when)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.expired and exc_type is asyncio.CancelledError:
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling:
                raise TimeoutError from exc
        return None

    def move(self, when: float | None) -> None:
        """Set the limit (None: none for now); only a limit earlier than the armed timer re-arms it."""
        self.when = when
        if when is not None and (self._handle is None or when < self._armed_at):
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        assert self._loop is not None
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        when = self.when
        if when is None or self.expired:
            return
        assert self._loop is not None and self._task is not None
        if self._loop.time() < when - 0.001:  # moved later since armed: wait for the current limit
            self._arm(when)
            return
        self.expired = True
        self._task.cancel()
