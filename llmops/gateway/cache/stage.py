"""The cache stage: answer from the cache when the request was answered before, store what was not.

Lookup order: the exact key, then (on routes with `semantic:`) the nearest conversations of the same
partition that pass the threshold and the second check; a conversation of several turns must also pass
the threshold turn by turn (each turn embedded on its own), so a history that differs is never answered
from another conversation because its last message is the same. Every response carries `x-llmops-cache: miss |
hit | semantic-hit` (and `x-llmops-cache-similarity` on a semantic hit). Stored: only complete 2xx
replies of the route the client asked for (not a fallback's), after the client has all of it; a
sampled request (temperature above 0 or unset) only where the route says `nondeterministic: true`.
`Cache-Control: no-cache` skips the lookup, `no-store` the storing. A cache that fails (Redis down)
costs a miss, never the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.gateway.cache.config import CacheConfig, RouteCache, effective
from llmops.gateway.cache.key import RequestKey, request_key, sampled
from llmops.gateway.cache.sameness import LONG_TURN_CHARS, conversation_difference, turns_difference
from llmops.gateway.cache.store import CacheStore, Entry, Row
from llmops.gateway.guard.stage import LEAK_NOTE
from llmops.gateway.stages import Call, Outcome, Reply, Stage

if TYPE_CHECKING:
    from llmops.gateway.cache.embed import Embedder
    from llmops.gateway.metrics import Metrics
    from llmops.gateway.table import RouteTable

log = logging.getLogger("llmops.gateway.cache")
HEADER = "x-llmops-cache"
SIMILARITY = "x-llmops-cache-similarity"
WARN_EVERY_S = 60.0
TURN_VECTORS = 2048  # turns' own vectors kept (about 1.6 KB each): a conversation's history repeats


@dataclass(slots=True)
class _Pending:
    """What on_request learnt that on_complete needs to store the reply."""

    key: RequestKey
    vector: Any


def cache_directives(headers: dict[str, str]) -> set[str]:
    return {d.strip().lower() for d in headers.get("cache-control", "").split(",") if d.strip()}


class CacheStage(Stage):
    name = "cache"

    def __init__(
        self,
        section: CacheConfig | None,
        table: RouteTable,
        store: CacheStore,
        metrics: Metrics | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.routes: dict[str, RouteCache] = {n: effective(section, r.cache) for n, r in table.routes.items()}
        self.store = store
        self.metrics = metrics
        self.embedder = embedder
        self._warned = 0.0
        self._turn_vectors: OrderedDict[bytes, Any] = OrderedDict()

    @property
    def semantic(self) -> bool:
        return any(rc.semantic is not None for rc in self.routes.values())

    def _failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned > WARN_EVERY_S:
            self._warned = now
            log.warning("cache %s failed (%s: %s); serving without the cache", what, type(exc).__name__, exc)

    def _count(self, route: str, result: str, entry: Entry | None = None) -> None:
        tokens = entry.input_tokens + entry.output_tokens if entry else 0
        usd = entry.cost_usd if entry else 0.0
        self.store.count(route, result, tokens, usd)
        if self.metrics is not None:
            self.metrics.cache_lookups.labels(route, result).inc()
            if entry is not None:
                self.metrics.cache_saved_tokens.labels(route).inc(tokens)
                self.metrics.cache_saved_dollars.labels(route).inc(usd)

    async def _turn_vector(self, text: str) -> Any:
        assert self.embedder is not None
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        vector = self._turn_vectors.get(key)
        if vector is None:
            vector = await self.embedder.embed(text)
            self._turn_vectors[key] = vector
            if len(self._turn_vectors) > TURN_VECTORS:
                self._turn_vectors.popitem(last=False)
        else:
            self._turn_vectors.move_to_end(key)
        return vector

    async def _turns_difference(
        self, a: tuple[str, ...], b: tuple[str, ...], threshold: float
    ) -> tuple[str | None, float]:
        """Turn by turn: each turn's own embedding, and long turns as text (sameness.turns_difference)."""
        if len(a) == 1 and max(len(a[0]), len(b[0])) <= LONG_TURN_CHARS:
            return None, 1.0  # one short turn: the conversation's vector is the turn's
        # only turns that differ and that the embedding reads whole are embedded, each text once
        texts = list(
            dict.fromkeys(
                t for x, y in zip(a, b, strict=False) if x != y for t in (x, y) if len(t) <= LONG_TURN_CHARS
            )
        )
        vectors = dict(zip(texts, await asyncio.gather(*(self._turn_vector(t) for t in texts)), strict=True))
        return turns_difference(a, b, [vectors.get(t) for t in a], [vectors.get(t) for t in b], threshold)

    async def on_request(self, call: Call) -> Reply | None:
        route = call.route.name
        rc = self.routes.get(route)
        if rc is None or not rc.on:
            return None
        call.response_headers[HEADER] = "miss"
        if (
            call.api != "embeddings" and sampled(call.body) and not rc.nondeterministic
        ):  # embeddings: deterministic
            return None
        directives = cache_directives(call.headers)
        lookup, store = "no-cache" not in directives, "no-store" not in directives
        if not (lookup or store):
            return None
        key = request_key(call.api, route, call.body)
        try:
            if lookup and rc.exact is not None:
                entry = await self.store.get(route, key.exact, max_age_s=rc.exact.ttl)
                if entry is not None:
                    self._count(route, "hit", entry)
                    return Reply.completion(entry.doc, {HEADER: "hit"})
            vector = None
            sem = key.semantic if rc.semantic is not None and self.embedder is not None else None
            if sem is not None:
                assert rc.semantic is not None and self.embedder is not None
                vector = await self.embedder.embed(sem.text)
                if lookup:
                    threshold = rc.semantic.threshold
                    for cand in await self.store.nearest(route, sem.partition, vector, threshold):
                        why = rc.semantic.verify and conversation_difference(
                            list(sem.texts), list(cand.texts)
                        )
                        similarity = cand.similarity
                        if not why:  # every turn on its own, not the joined conversation only
                            why, weakest = await self._turns_difference(sem.texts, cand.texts, threshold)
                            similarity = min(similarity, weakest)
                        if why:  # the reason only: prompts stay out of logs
                            log.debug(
                                "route %s: candidate at %.3f is not the same question: %s",
                                route,
                                cand.similarity,
                                why,
                            )
                            continue
                        entry = await self.store.get(route, cand.key)
                        if entry is None:
                            self.store.forget(route, sem.partition, cand.key)
                            continue
                        self._count(route, "semantic_hit", entry)
                        headers = {HEADER: "semantic-hit", SIMILARITY: f"{similarity:.4f}"}
                        return Reply.completion(entry.doc, headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed("lookup", exc)
            return None
        if lookup:
            self._count(route, "miss")
        if store:
            call.capture = True
            call.notes[self.name] = _Pending(key, vector)
        return None

    async def on_complete(self, call: Call, outcome: Outcome) -> None:
        pending = call.notes.get(self.name)
        if not isinstance(pending, _Pending) or outcome.from_stage is not None:
            return
        if not (outcome.complete and 200 <= outcome.status < 300 and outcome.response is not None):
            return
        if outcome.route is not None and outcome.route != call.route.name:
            return  # a fallback answered: not what this route would say
        if call.notes.get(LEAK_NOTE):
            return  # the guard found a secret in it: never replay that
        rc = self.routes[call.route.name]
        u = outcome.usage
        entry = Entry(outcome.response, u.input_tokens, u.output_tokens, outcome.cost_usd)
        ttls = [layer.ttl for layer in (rc.exact, rc.semantic) if layer is not None]
        row = None
        sem = pending.key.semantic
        if rc.semantic is not None and sem is not None and pending.vector is not None:
            row = Row(sem.partition, pending.vector, sem.texts, rc.semantic.ttl)
        try:
            await self.store.put(call.route.name, pending.key.exact, entry, max(ttls), row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed("store", exc)

    async def close(self) -> None:
        await self.store.close()
