"""The cache stage: answer from the cache when the request was answered before, store what was not.

Lookup order: the exact key, then (on routes with `semantic:`) the nearest conversations of the same
partition that pass the threshold and the second check. Every response carries `x-llmops-cache: miss |
hit | semantic-hit` (and `x-llmops-cache-similarity` on a semantic hit). Stored: only complete 2xx
replies of the route the client asked for (not a fallback's), after the client has all of it; a
sampled request (temperature above 0 or unset) only where the route says `nondeterministic: true`.
`Cache-Control: no-cache` skips the lookup, `no-store` the storing. A cache that fails (Redis down)
costs a miss, never the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.gateway.cache.config import CacheConfig, RouteCache, effective
from llmops.gateway.cache.key import RequestKey, request_key, sampled
from llmops.gateway.cache.sameness import conversation_difference
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
                    for cand in await self.store.nearest(route, sem.partition, vector, rc.semantic.threshold):
                        why = rc.semantic.verify and conversation_difference(
                            list(sem.texts), list(cand.texts)
                        )
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
                        headers = {HEADER: "semantic-hit", SIMILARITY: f"{cand.similarity:.4f}"}
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
