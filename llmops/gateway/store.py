"""Shared state behind one interface: sliding windows (RPM/TPM), spend, breaker cool-downs.

`MemoryStore` serves one process; `RedisStore` lets several replicas enforce one limit (every update is
one atomic Lua script). Why not the `limits` library: its moving window keeps one entry per unit of cost
(a 100,000-TPM window would hold 100,000 list items) and cannot take back an over-estimate, while TPM
here is estimated before the call and corrected after it. The window below is an exact sliding log with
one entry per request whose amount can be corrected.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Window:
    """One sliding-window limit to check: `amount` more must fit under `limit` within `window_s`."""

    key: str
    amount: int
    limit: int
    window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Admission:
    ok: bool
    refused: int = -1  # index of the first window (or len(windows) for the budget) that refused
    retry_after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class BreakerVerdict:
    tripped: bool  # this failure tripped the breaker just now
    cooldown_until: float  # epoch seconds; 0 when not cooled down


class Store(Protocol):
    async def admit(
        self, windows: list[Window], member: str, budget: tuple[str, float] | None = None
    ) -> Admission:
        """Atomically: if every window has room (and spend < budget), record `member` in each; else nothing."""
        ...

    async def adjust(self, window: Window, member: str, old: int) -> None:
        """Correct `member`'s amount in a window from `old` to `window.amount` (after the call)."""
        ...

    async def add_spend(self, key: str, usd: float) -> float: ...

    async def spend(self, key: str) -> float: ...

    async def record_result(
        self,
        dep: str,
        oks: int,
        failed: bool,
        *,
        failures: int,
        ratio: float | None,
        window_s: float,
        min_requests: int,
        cooldown_s: float,
    ) -> BreakerVerdict:
        """Count `oks` successes then (when `failed`) one failure for a deployment's breaker; trip it
        (set a cool-down) when the rule says so. Successes are batched by the caller."""
        ...

    async def cooldowns(self, deps: list[str]) -> dict[str, float]:
        """Cool-down end (epoch seconds) per deployment that is cooled down now."""
        ...

    async def close(self) -> None: ...


class _Log:
    """One sliding window in memory: entries in arrival order, amounts correctable by member."""

    __slots__ = ("entries", "order", "total")

    def __init__(self) -> None:
        self.order: deque[tuple[float, str]] = deque()
        self.entries: dict[str, int] = {}
        self.total = 0

    def expire(self, horizon: float) -> None:
        order, entries = self.order, self.entries
        while order and order[0][0] <= horizon:
            _, member = order.popleft()
            self.total -= entries.pop(member, 0)

    def retry_after(self, need: int, limit: int, now: float, window_s: float) -> float:
        free = limit - self.total
        for t, member in self.order:
            if free >= need:
                break
            free += self.entries.get(member, 0)
            wait = t + window_s - now
            if free >= need:
                return max(wait, 0.001)
        return window_s if free < need else 0.001


class MemoryStore:
    """State of one process."""

    def __init__(self) -> None:
        self.logs: dict[str, _Log] = {}
        self.spent: dict[str, float] = {}
        self.breakers: dict[str, list[float]] = {}  # dep -> [consecutive, window_start, ok, fail]
        self.cooled: dict[str, float] = {}

    async def admit(
        self, windows: list[Window], member: str, budget: tuple[str, float] | None = None
    ) -> Admission:
        now = time.time()
        logs = []
        for i, w in enumerate(windows):
            log = self.logs.get(w.key)
            if log is None:
                log = self.logs[w.key] = _Log()
            log.expire(now - w.window_s)
            if log.total + w.amount > w.limit:
                return Admission(False, i, log.retry_after(w.amount, w.limit, now, w.window_s))
            logs.append(log)
        if budget is not None and self.spent.get(budget[0], 0.0) >= budget[1]:
            return Admission(False, len(windows), 0.0)
        for w, log in zip(windows, logs, strict=True):
            log.order.append((now, member))
            log.entries[member] = w.amount
            log.total += w.amount
        return Admission(True)

    async def adjust(self, window: Window, member: str, old: int) -> None:
        log = self.logs.get(window.key)
        if log is not None and member in log.entries:
            log.total += window.amount - log.entries[member]
            log.entries[member] = window.amount

    async def add_spend(self, key: str, usd: float) -> float:
        self.spent[key] = total = self.spent.get(key, 0.0) + usd
        return total

    async def spend(self, key: str) -> float:
        return self.spent.get(key, 0.0)

    async def record_result(
        self,
        dep: str,
        oks: int,
        failed: bool,
        *,
        failures: int,
        ratio: float | None,
        window_s: float,
        min_requests: int,
        cooldown_s: float,
    ) -> BreakerVerdict:
        now = time.time()
        b = self.breakers.setdefault(dep, [0, now, 0, 0])
        if now - b[1] > window_s:
            b[1], b[2], b[3] = now, 0, 0
        if oks:
            b[0] = 0
            b[2] += oks
        if not failed:
            return BreakerVerdict(False, 0.0)
        b[0] += 1
        b[3] += 1
        total = b[2] + b[3]
        if b[0] >= failures or (ratio is not None and total >= min_requests and b[3] / total >= ratio):
            until = now + cooldown_s
            self.cooled[dep] = until
            self.breakers[dep] = [0, now, 0, 0]
            return BreakerVerdict(True, until)
        return BreakerVerdict(False, 0.0)

    async def cooldowns(self, deps: list[str]) -> dict[str, float]:
        now = time.time()
        return {d: u for d in deps if (u := self.cooled.get(d, 0.0)) > now}

    async def close(self) -> None:
        return None


# KEYS: window keys (each with a companion KEY..":sum"), then the budget key when ARGV[3] == "1".
# ARGV: now_ms, member, has_budget, budget_limit, then per window: amount, limit, window_ms.
_ADMIT = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local nwin = #KEYS
if ARGV[3] == '1' then nwin = nwin - 1 end
for i = 1, nwin do
  local key = KEYS[i]
  local amount = tonumber(ARGV[4 + (i - 1) * 3 + 1])
  local limit = tonumber(ARGV[4 + (i - 1) * 3 + 2])
  local win = tonumber(ARGV[4 + (i - 1) * 3 + 3])
  local old = redis.call('ZRANGEBYSCORE', key, '-inf', now - win)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do freed = freed + tonumber(string.match(m, ':(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
    redis.call('DECRBY', key .. ':sum', freed)
  end
  local total = tonumber(redis.call('GET', key .. ':sum') or '0')
  if total + amount > limit then
    local free = limit - total
    local entries = redis.call('ZRANGE', key, 0, 999, 'WITHSCORES')
    for j = 1, #entries, 2 do
      free = free + tonumber(string.match(entries[j], ':(%d+)$'))
      if free >= amount then return {i, tonumber(entries[j + 1]) + win - now} end
    end
    return {i, win}
  end
end
if ARGV[3] == '1' then
  local spent = tonumber(redis.call('GET', KEYS[#KEYS]) or '0')
  if spent >= tonumber(ARGV[4]) then return {#KEYS, 0} end
end
for i = 1, nwin do
  local key = KEYS[i]
  local amount = tonumber(ARGV[4 + (i - 1) * 3 + 1])
  local win = tonumber(ARGV[4 + (i - 1) * 3 + 3])
  redis.call('ZADD', key, now, member .. ':' .. amount)
  redis.call('INCRBY', key .. ':sum', amount)
  redis.call('PEXPIRE', key, win)
  redis.call('PEXPIRE', key .. ':sum', win)
end
return {0, 0}
"""

# KEYS: window key. ARGV: member, old amount, new amount, window_ms.
_ADJUST = """
local old = ARGV[1] .. ':' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], old)
if not score then return 0 end
redis.call('ZREM', KEYS[1], old)
redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':' .. ARGV[3])
redis.call('INCRBY', KEYS[1] .. ':sum', tonumber(ARGV[3]) - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1] .. ':sum', ARGV[4])
return 1
"""

# KEYS: breaker hash, cool-down key. ARGV: now_ms, oks, failed, failures, ratio (or -1), window_ms, min,
# cooldown_ms.
_RESULT = """
local now = tonumber(ARGV[1])
local h = KEYS[1]
local start = tonumber(redis.call('HGET', h, 'start') or '0')
if now - start > tonumber(ARGV[6]) then
  redis.call('HSET', h, 'start', now, 'ok', 0, 'fail', 0)
end
redis.call('PEXPIRE', h, ARGV[6])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', h, 'consec', 0)
  redis.call('HINCRBY', h, 'ok', tonumber(ARGV[2]))
end
if ARGV[3] ~= '1' then return 0 end
local consec = redis.call('HINCRBY', h, 'consec', 1)
local fail = redis.call('HINCRBY', h, 'fail', 1)
local total = fail + tonumber(redis.call('HGET', h, 'ok') or '0')
local ratio = tonumber(ARGV[5])
if consec >= tonumber(ARGV[4]) or (ratio > 0 and total >= tonumber(ARGV[7]) and fail / total >= ratio) then
  local untilms = now + tonumber(ARGV[8])
  redis.call('SET', KEYS[2], untilms, 'PX', ARGV[8])
  redis.call('DEL', h)
  return untilms
end
return 0
"""


class RedisStore:
    """State shared by every replica through one Redis; each update is one atomic script."""

    def __init__(self, url: str, prefix: str = "llmops:gw") -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._admit = self.redis.register_script(_ADMIT)
        self._adjust = self.redis.register_script(_ADJUST)
        self._result = self.redis.register_script(_RESULT)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def ping(self) -> None:
        await self.redis.ping()

    async def admit(
        self, windows: list[Window], member: str, budget: tuple[str, float] | None = None
    ) -> Admission:
        keys = [self._k("w", w.key) for w in windows]
        args: list[Any] = [
            int(time.time() * 1000),
            member,
            "1" if budget else "0",
            budget[1] if budget else 0,
        ]
        for w in windows:
            args += [w.amount, w.limit, int(w.window_s * 1000)]
        if budget:
            keys.append(self._k("spend", budget[0]))
        which, wait_ms = await self._admit(keys=keys, args=args)
        if int(which) == 0:
            return Admission(True)
        return Admission(False, int(which) - 1, max(float(wait_ms) / 1000, 0.001 if int(wait_ms) else 0.0))

    async def adjust(self, window: Window, member: str, old: int) -> None:
        if window.amount == old:
            return
        await self._adjust(
            keys=[self._k("w", window.key)], args=[member, old, window.amount, int(window.window_s * 1000)]
        )

    async def add_spend(self, key: str, usd: float) -> float:
        return float(await self.redis.incrbyfloat(self._k("spend", key), usd))

    async def spend(self, key: str) -> float:
        return float(await self.redis.get(self._k("spend", key)) or 0.0)

    async def record_result(
        self,
        dep: str,
        oks: int,
        failed: bool,
        *,
        failures: int,
        ratio: float | None,
        window_s: float,
        min_requests: int,
        cooldown_s: float,
    ) -> BreakerVerdict:
        until = await self._result(
            keys=[self._k("brk", dep), self._k("cool", dep)],
            args=[
                int(time.time() * 1000),
                oks,
                "1" if failed else "0",
                failures,
                ratio if ratio is not None else -1,
                int(window_s * 1000),
                min_requests,
                int(cooldown_s * 1000),
            ],
        )
        until_s = float(until) / 1000
        return BreakerVerdict(until_s > 0, until_s)

    async def cooldowns(self, deps: list[str]) -> dict[str, float]:
        if not deps:
            return {}
        values = await self.redis.mget([self._k("cool", d) for d in deps])
        now = time.time()
        return {d: float(v) / 1000 for d, v in zip(deps, values, strict=True) if v and float(v) / 1000 > now}

    async def close(self) -> None:
        await self.redis.aclose()


def open_store(redis_url: str | None) -> MemoryStore | RedisStore:
    return RedisStore(redis_url) if redis_url else MemoryStore()
