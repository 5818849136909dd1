"""The cache shared by every gateway replica through one Redis (Debian's redis-server 7.0 is enough).

Layout, all under `llmops:cache:<route>:` so one route can be inspected or cleared alone:
- `e:<key>`: the entry (JSON), with its TTL (`SET ... PX`);
- `s:<partition>`: a stream of semantic rows (entry key, vector as float32 bytes, the turns' text,
  expiry). Stream IDs are times, so `XADD ... MINID ~ <now - ttl>` drops rows as they age and the
  stream itself expires when idle: nothing grows without bound.

Redis 7.0 has no vector search, and shipping a partition's vectors on every lookup would cost more as
it grows, so each process keeps its own copy of the partitions it has searched (`VectorIndex`) and
brings it up to date with one `XRANGE <last id> +` per lookup (usually empty), then searches in
memory. A row whose entry has expired or was cleared is skipped when its `GET` finds nothing.
Lookup counters are added up in memory and flushed once a second (`HINCRBY`), off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from llmops.gateway.cache.index import Candidate, VectorIndex
from llmops.gateway.cache.store import Entry, RouteStats, Row

PREFIX = "llmops:cache"
FLUSH_S = 1.0
MAX_PARTITIONS = 1024  # local copies kept per process (least recently searched go first)
STATS = ("hit", "semantic_hit", "miss", "saved_tokens", "saved_usd")


class _Local:
    """This process's copy of one partition's rows, and how far into the stream it has read."""

    __slots__ = ("index", "last_id")

    def __init__(self) -> None:
        self.index = VectorIndex()
        self.last_id = b"0-0"


class RedisCacheStore:
    def __init__(
        self, url: str, *, prefix: str = PREFIX, max_rows: int = 10_000, max_local_rows: int = 100_000
    ) -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.from_url(url)
        self.prefix = prefix
        self.max_rows = max_rows  # rows per partition stream
        self.max_local_rows = max_local_rows  # rows in this process's copies, all partitions (~150 MB)
        self.local: OrderedDict[tuple[str, str], _Local] = OrderedDict()
        self.pending: dict[str, dict[str, float]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def _k(self, route: str, *parts: str) -> str:
        return ":".join((self.prefix, route, *parts))

    async def get(self, route: str, key: str, max_age_s: float | None = None) -> Entry | None:
        raw = await self.redis.get(self._k(route, "e", key))
        if raw is None:
            return None
        entry = Entry.from_bytes(raw)
        if max_age_s is not None and time.time() - entry.created > max_age_s:
            return None
        return entry

    async def put(self, route: str, key: str, entry: Entry, ttl_s: float, row: Row | None = None) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._k(route, "e", key), entry.to_bytes(), px=max(1, int(ttl_s * 1000)))
            if row is not None:
                stream = self._k(route, "s", row.partition)
                now_ms = int(time.time() * 1000)
                fields = {
                    "k": key,
                    "v": np.asarray(row.vector, dtype=np.float32).tobytes(),
                    "t": json.dumps(row.texts),
                    "x": now_ms + int(row.ttl_s * 1000),
                }
                pipe.xadd(stream, fields, minid=now_ms - int(row.ttl_s * 1000), approximate=True)
                pipe.xtrim(stream, maxlen=self.max_rows, approximate=True)
                pipe.pexpire(stream, int(row.ttl_s * 1000))
            await pipe.execute()

    async def nearest(self, route: str, partition: str, vector: Any, threshold: float) -> list[Candidate]:
        ident = (route, partition)
        local = self.local.get(ident)
        if local is None:
            local = self.local[ident] = _Local()
            while len(self.local) > MAX_PARTITIONS:
                self.local.popitem(last=False)
        self.local.move_to_end(ident)
        stream = self._k(route, "s", partition)
        added = 0
        while True:
            rows = await self.redis.xrange(stream, min=b"(" + local.last_id, count=1000)
            for row_id, f in rows:
                vec = np.frombuffer(f[b"v"], dtype=np.float32)
                local.index.add(f[b"k"].decode(), vec, tuple(json.loads(f[b"t"])), int(f[b"x"]) / 1000)
                local.last_id = row_id
            added += len(rows)
            if len(rows) < 1000:
                break
        if added:
            self._bound_local(ident)
        return local.index.search(vector, threshold)

    def _bound_local(self, keep: tuple[str, str]) -> None:
        """Drop the least recently searched local copies while they hold more than `max_local_rows`."""
        total = sum(len(loc.index) for loc in self.local.values())
        for ident in list(self.local):
            if total <= self.max_local_rows:
                break
            if ident != keep:
                total -= len(self.local.pop(ident).index)

    def forget(self, route: str, partition: str, key: str) -> None:
        """A row whose entry is gone: drop it from this process's copy."""
        local = self.local.get((route, partition))
        if local is not None:
            local.index.remove(key)

    def count(self, route: str, result: str, tokens: int = 0, usd: float = 0.0) -> None:
        p = self.pending.setdefault(route, dict.fromkeys(STATS, 0.0))
        p[result] += 1
        p["saved_tokens"] += tokens
        p["saved_usd"] += usd
        if self._flusher is None or self._flusher.done():
            with contextlib.suppress(RuntimeError):
                self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_S)
        await self.flush()

    async def flush(self) -> None:
        pending, self.pending = self.pending, {}
        if not pending:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for route, counts in pending.items():
                key = self._k(route, "stats")
                for name, value in counts.items():
                    if not value:
                        continue
                    if name == "saved_usd":
                        pipe.hincrbyfloat(key, name, value)
                    else:
                        pipe.hincrby(key, name, int(value))
            await pipe.execute()

    async def _routes(self) -> set[str]:
        routes = set()
        depth = len(self.prefix.split(":"))
        async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            parts = key.decode().split(":")
            if len(parts) > depth + 1:
                routes.add(parts[depth])
        return routes

    async def stats(self, route: str | None = None) -> dict[str, RouteStats]:
        await self.flush()
        out: dict[str, RouteStats] = {}
        for name in sorted([route] if route else await self._routes()):
            s = RouteStats()
            keys = [k async for k in self.redis.scan_iter(match=self._k(name, "e", "*"), count=1000)]
            s.entries = len(keys)
            if keys:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for k in keys:
                        pipe.strlen(k)
                    s.bytes = sum(await pipe.execute())
            counts = await self.redis.hgetall(self._k(name, "stats"))
            s.hit = int(counts.get(b"hit", 0))
            s.semantic_hit = int(counts.get(b"semantic_hit", 0))
            s.miss = int(counts.get(b"miss", 0))
            s.saved_tokens = int(counts.get(b"saved_tokens", 0))
            s.saved_usd = float(counts.get(b"saved_usd", 0.0))
            if s.entries or s.hit or s.semantic_hit or s.miss or route:
                out[name] = s
        return out

    async def clear(self, route: str | None = None) -> int:
        await self.flush()
        pattern = f"{self.prefix}:{route}:*" if route else f"{self.prefix}:*"
        removed = 0
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            removed += b":e:" in key
            if len(batch) >= 500:
                await self.redis.unlink(*batch)
                batch = []
        if batch:
            await self.redis.unlink(*batch)
        for ident in [i for i in self.local if route is None or i[0] == route]:
            del self.local[ident]
        return removed

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        with contextlib.suppress(Exception):
            await self.flush()
        await self.redis.aclose()
