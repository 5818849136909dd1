"""Where cached replies live: one interface, a bounded in-memory store and a Redis store.

An entry is a complete 2xx reply in the client's API format plus what it cost (tokens, dollars), so a
hit can count what it saved. Entries carry their TTL; the memory store is also bounded by entries and
bytes (least recently used goes first). Semantic rows (vector + the turns' text) sit beside their
entry in a per-partition index; a row whose entry is gone is skipped and dropped.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy loads only when a semantic row is stored (the exact layer does without it)
    from llmops.gateway.cache.index import Candidate, VectorIndex

RESULTS = ("hit", "semantic_hit", "miss")


@dataclass(slots=True)
class Entry:
    doc: dict[str, Any]  # the reply, in the client's API format
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    created: float = field(default_factory=time.time)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"doc": self.doc, "in": self.input_tokens, "out": self.output_tokens, "usd": self.cost_usd,
             "t": self.created},
            separators=(",", ":"),
        ).encode()  # fmt: skip

    @classmethod
    def from_bytes(cls, raw: bytes) -> Entry:
        d = json.loads(raw)
        return cls(d["doc"], d.get("in", 0), d.get("out", 0), d.get("usd", 0.0), d.get("t", 0.0))


@dataclass(frozen=True, slots=True)
class Row:
    """A semantic row: the entry's vector and the turns it answered."""

    partition: str
    vector: Any  # numpy float32 (384,), unit length
    texts: tuple[str, ...]
    ttl_s: float


@dataclass
class RouteStats:
    entries: int = 0
    bytes: int = 0
    hit: int = 0
    semantic_hit: int = 0
    miss: int = 0
    saved_tokens: int = 0
    saved_usd: float = 0.0

    def as_json(self) -> dict[str, Any]:
        lookups = self.hit + self.semantic_hit + self.miss
        return {
            "entries": self.entries,
            "bytes": self.bytes,
            "lookups": lookups,
            "hit": self.hit,
            "semantic_hit": self.semantic_hit,
            "miss": self.miss,
            "hit_rate": round((self.hit + self.semantic_hit) / lookups, 4) if lookups else None,
            "saved_tokens": self.saved_tokens,
            "saved_usd": round(self.saved_usd, 6),
        }


class CacheStore(Protocol):
    async def get(self, route: str, key: str, max_age_s: float | None = None) -> Entry | None: ...

    async def put(self, route: str, key: str, entry: Entry, ttl_s: float, row: Row | None = None) -> None: ...

    async def nearest(self, route: str, partition: str, vector: Any, threshold: float) -> list[Candidate]:
        """Semantic rows of a partition at or above the threshold, most similar first."""
        ...

    def forget(self, route: str, partition: str, key: str) -> None:
        """Drop a semantic row whose entry is gone (expired, evicted, cleared)."""
        ...

    def count(self, route: str, result: str, tokens: int = 0, usd: float = 0.0) -> None:
        """Record a lookup's result (and what a hit saved) for `cache stats`; never waits."""
        ...

    async def stats(self, route: str | None = None) -> dict[str, RouteStats]: ...

    async def clear(self, route: str | None = None) -> int:
        """Remove the entries of one route (or all); returns how many."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Item:
    route: str
    entry: Entry
    expires: float
    size: int
    partition: str | None


class MemoryStore:
    """One process's cache: LRU bounded by entries and bytes, every entry with its TTL."""

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, _Item] = OrderedDict()
        self.indexes: dict[str, VectorIndex] = {}
        self.bytes = 0
        self.counters: dict[str, RouteStats] = {}

    @staticmethod
    def _id(route: str, key: str) -> str:
        return f"{route}\x00{key}"

    def _drop(self, ident: str) -> None:
        item = self.items.pop(ident, None)
        if item is None:
            return
        self.bytes -= item.size
        if item.partition is not None and (index := self.indexes.get(item.partition)) is not None:
            index.remove(ident)
            if not len(index):
                del self.indexes[item.partition]

    async def get(self, route: str, key: str, max_age_s: float | None = None) -> Entry | None:
        ident = self._id(route, key)
        item = self.items.get(ident)
        if item is None:
            return None
        now = time.time()
        if item.expires <= now:
            self._drop(ident)
            return None
        if max_age_s is not None and now - item.entry.created > max_age_s:
            return None
        self.items.move_to_end(ident)
        return item.entry

    async def put(self, route: str, key: str, entry: Entry, ttl_s: float, row: Row | None = None) -> None:
        ident = self._id(route, key)
        self._drop(ident)
        size = len(entry.to_bytes()) + (row.vector.nbytes + sum(len(t) for t in row.texts) if row else 0)
        if size > self.max_bytes:
            return
        self.items[ident] = _Item(route, entry, entry.created + ttl_s, size, row.partition if row else None)
        self.bytes += size
        if row is not None:
            from llmops.gateway.cache.index import VectorIndex

            index = self.indexes.get(row.partition)
            if index is None:
                index = self.indexes[row.partition] = VectorIndex()
            index.add(ident, row.vector, row.texts, entry.created + row.ttl_s)
        while len(self.items) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self.items)))

    async def nearest(self, route: str, partition: str, vector: Any, threshold: float) -> list[Candidate]:
        from llmops.gateway.cache.index import Candidate

        index = self.indexes.get(partition)
        if index is None:
            return []
        out = []
        for c in index.search(vector, threshold):
            if c.key in self.items:
                out.append(Candidate(c.similarity, c.key.split("\x00", 1)[1], c.texts))
        return out

    def forget(self, route: str, partition: str, key: str) -> None:
        return None  # rows leave with their entry

    def count(self, route: str, result: str, tokens: int = 0, usd: float = 0.0) -> None:
        s = self.counters.get(route)
        if s is None:
            s = self.counters[route] = RouteStats()
        setattr(s, result, getattr(s, result) + 1)
        s.saved_tokens += tokens
        s.saved_usd += usd

    async def stats(self, route: str | None = None) -> dict[str, RouteStats]:
        now = time.time()
        for ident in [i for i, it in self.items.items() if it.expires <= now]:
            self._drop(ident)
        out: dict[str, RouteStats] = {}
        for name, c in self.counters.items():
            out[name] = RouteStats(0, 0, c.hit, c.semantic_hit, c.miss, c.saved_tokens, c.saved_usd)
        for item in self.items.values():
            s = out.setdefault(item.route, RouteStats())
            s.entries += 1
            s.bytes += item.size
        return {k: v for k, v in out.items() if route is None or k == route}

    async def clear(self, route: str | None = None) -> int:
        doomed = [i for i, it in self.items.items() if route is None or it.route == route]
        for ident in doomed:
            self._drop(ident)
        return len(doomed)

    async def close(self) -> None:
        return None
