"""The cache stores: the memory one bounded by entries, bytes and TTL; the Redis one shared by processes."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from llmops.gateway.cache.store import Entry, MemoryStore, Row


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


def entry(text: str = "ok", tokens: int = 10, usd: float = 0.001) -> Entry:
    return Entry({"choices": [{"message": {"role": "assistant", "content": text}}]}, tokens, tokens, usd)


def run(coro):
    return asyncio.run(coro)


def test_memory_lru_by_entries() -> None:
    async def go() -> None:
        s = MemoryStore(max_entries=3)
        for i in range(3):
            await s.put("chat", f"k{i}", entry(), 60)
        assert await s.get("chat", "k0") is not None  # k0 is now the most recent
        await s.put("chat", "k3", entry(), 60)
        assert await s.get("chat", "k1") is None  # the least recently used went
        assert [await s.get("chat", k) is not None for k in ("k0", "k2", "k3")] == [True, True, True]

    run(go())


def test_memory_bounded_by_bytes() -> None:
    async def go() -> None:
        s = MemoryStore(max_entries=1000, max_bytes=2000)
        for i in range(20):
            await s.put("chat", f"k{i}", entry("x" * 300), 60)
        assert s.bytes <= 2000
        assert 1 <= len(s.items) < 20
        assert await s.get("chat", "k19") is not None
        await s.put("chat", "huge", entry("x" * 5000), 60)  # larger than the whole budget: not kept
        assert await s.get("chat", "huge") is None and await s.get("chat", "k19") is not None

    run(go())


def test_memory_ttl_and_max_age() -> None:
    async def go() -> None:
        s = MemoryStore()
        await s.put("chat", "k", entry(), 0.05)
        assert await s.get("chat", "k") is not None
        await asyncio.sleep(0.08)
        assert await s.get("chat", "k") is None and not s.items  # expired entries leave
        old = entry()
        old.created = time.time() - 100
        await s.put("chat", "old", old, 1000)
        assert await s.get("chat", "old", max_age_s=50) is None
        assert await s.get("chat", "old", max_age_s=500) is not None

    run(go())


def test_memory_semantic_rows_leave_with_their_entry() -> None:
    async def go() -> None:
        s = MemoryStore(max_entries=2)
        v = unit(1)
        await s.put("chat", "a", entry(), 60, Row("p", v, ("hello",), 60))
        [c] = await s.nearest("chat", "p", v, 0.95)
        assert (c.key, c.texts) == ("a", ("hello",)) and c.similarity == pytest.approx(1.0, abs=1e-5)
        assert await s.nearest("chat", "other-partition", v, 0.5) == []
        assert await s.nearest("chat", "p", unit(2), 0.5) == []  # unrelated vectors are far apart
        await s.put("chat", "b", entry(), 60)
        await s.put("chat", "c", entry(), 60)  # evicts "a"
        assert await s.nearest("chat", "p", v, 0.5) == [] and "p" not in s.indexes

    run(go())


def test_memory_stats_and_clear_by_route() -> None:
    async def go() -> None:
        s = MemoryStore()
        await s.put("chat", "a", entry(), 60)
        await s.put("chat", "b", entry(), 60)
        await s.put("backup", "c", entry(), 60)
        s.count("chat", "hit", 20, 0.002)
        s.count("chat", "miss")
        stats = await s.stats()
        assert stats["chat"].as_json() | {"bytes": 0} == {
            "entries": 2, "bytes": 0, "lookups": 2, "hit": 1, "semantic_hit": 0, "miss": 1, "hit_rate": 0.5,
            "saved_tokens": 20, "saved_usd": 0.002,
        }  # fmt: skip
        assert stats["backup"].entries == 1
        assert await s.clear("chat") == 2
        assert (await s.stats("chat"))["chat"].entries == 0 and (await s.stats())["backup"].entries == 1

    run(go())


def test_redis_entries_rows_stats_and_clear_shared_by_two_stores(redis_url: str) -> None:
    from llmops.gateway.cache.redis_store import RedisCacheStore

    async def go() -> None:
        a, b = RedisCacheStore(redis_url, prefix="t1:cache"), RedisCacheStore(redis_url, prefix="t1:cache")
        v = unit(3)
        await a.put("chat", "k1", entry("first"), 60, Row("p", v, ("hi",), 60))
        got = await b.get("chat", "k1")
        assert got is not None and got.doc == entry("first").doc and got.output_tokens == 10
        [c] = await b.nearest("chat", "p", v, 0.99)  # b learns a's row from the stream
        assert (c.key, c.texts) == ("k1", ("hi",))
        await a.put("chat", "k2", entry("second"), 60, Row("p", unit(4), ("yo",), 60))
        assert [c.key for c in await b.nearest("chat", "p", unit(4), 0.99)] == ["k2"]  # only new rows read
        assert await a.redis.pttl("t1:cache:chat:e:k1") > 50_000  # entries carry their TTL
        assert 0 < await a.redis.pttl("t1:cache:chat:s:p") <= 60_000  # so do the streams
        a.count("chat", "hit", 20, 0.5)
        b.count("chat", "miss")
        await a.flush()
        stats = (await b.stats())["chat"]
        assert (stats.entries, stats.hit, stats.miss, stats.saved_tokens, stats.saved_usd) == (
            2,
            1,
            1,
            20,
            0.5,
        )
        assert await b.clear("chat") == 2
        assert await a.get("chat", "k1") is None
        assert await a.redis.keys("t1:cache:chat:*") == []
        await a.close()
        await b.close()

    run(go())


def test_redis_rows_expire_with_the_stream(redis_url: str) -> None:
    from llmops.gateway.cache.redis_store import RedisCacheStore

    async def go() -> None:
        s = RedisCacheStore(redis_url, prefix="t2:cache")
        v = unit(5)
        await s.put("chat", "k", entry(), 0.2, Row("p", v, ("hi",), 0.2))
        assert len(await s.nearest("chat", "p", v, 0.99)) == 1
        await asyncio.sleep(0.3)
        assert await s.nearest("chat", "p", v, 0.99) == []  # the row's expiry is kept locally too
        assert await s.get("chat", "k") is None
        assert await s.redis.exists("t2:cache:chat:s:p") == 0
        await s.close()

    run(go())


def test_redis_local_copies_are_bounded(redis_url: str) -> None:
    from llmops.gateway.cache.redis_store import RedisCacheStore

    async def go() -> None:
        s = RedisCacheStore(redis_url, prefix="t3:cache", max_local_rows=3)
        for p in ("p1", "p2", "p3"):
            for i in range(2):
                await s.put("chat", f"{p}-{i}", entry(), 60, Row(p, unit(i), ("x",), 60))
            await s.nearest("chat", p, unit(0), 0.99)
        assert sum(len(loc.index) for loc in s.local.values()) <= 3
        assert ("chat", "p3") in s.local  # the partition just searched stays
        assert [c.key for c in await s.nearest("chat", "p1", unit(0), 0.99)] == [
            "p1-0"
        ]  # re-read when needed
        await s.clear()
        await s.close()

    run(go())
