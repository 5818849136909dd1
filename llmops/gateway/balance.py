"""Which deployment takes the next try: health (breaker cool-downs, shared through the store) and balance.

Breaker: a deployment is cooled down after N consecutive failures or a failure share over a window (the
store counts, atomically, so replicas trip it together). When its cool-down ends it is half-open: the
next try is the probe; a failure cools it down again at once, a success readmits it.
"""

from __future__ import annotations

import contextlib
import random
import time

from llmops.gateway.config import Breaker
from llmops.gateway.metrics import Metrics
from llmops.gateway.store import Store
from llmops.gateway.table import Deployment, Route, RouteTable

SYNC_EVERY_S = 0.25  # how stale this process's view of shared cool-downs may be
EWMA_ALPHA = 0.2


class Health:
    def __init__(self, table: RouteTable, store: Store, breaker: Breaker, metrics: Metrics) -> None:
        self.store = store
        self.cfg = breaker
        self.metrics = metrics
        self.deps: dict[str, Deployment] = {d.key: d for r in table.routes.values() for d in r.deployments}
        self.inflight: dict[str, int] = dict.fromkeys(self.deps, 0)
        self.latency: dict[str, float] = {}
        self.cooled: dict[str, float] = {}  # dep key -> cool-down end (epoch s)
        self.probing: set[str] = set()  # cool-down over, next result decides
        self.oks: dict[str, int] = {}  # successes not yet told to the store (sent with the next failure)
        self._synced = 0.0
        for d in self.deps.values():
            metrics.dep_healthy.labels(d.route, d.name).set(1)

    async def sync(self) -> None:
        """Refresh shared cool-downs at most every SYNC_EVERY_S; move expired ones to half-open."""
        now = time.time()
        if now - self._synced < SYNC_EVERY_S:
            return
        self._synced = now
        shared = await self.store.cooldowns(list(self.deps))
        for key, until in shared.items():
            if key not in self.cooled:
                self._cool(key, until)
        for key, until in list(self.cooled.items()):
            if until <= now and key not in shared:
                del self.cooled[key]
                self.probing.add(key)

    def _cool(self, key: str, until: float) -> None:
        self.cooled[key] = until
        self.probing.discard(key)
        d = self.deps.get(key)
        if d is not None:  # else removed by a reload while this request was still on it
            self.metrics.dep_healthy.labels(d.route, d.name).set(0)

    def update(self, table: RouteTable, breaker: Breaker, modified: set[str]) -> None:
        """Take over a reloaded table: unchanged deployments keep their breaker state and latency; a
        modified one (new URL, model...) starts afresh; a removed one keeps its in-flight count until the
        requests still on it finish (`forget`)."""
        self.cfg = breaker
        new = {d.key: d for r in table.routes.values() for d in r.deployments}
        for key in modified:
            for state in (self.cooled, self.latency, self.oks):
                state.pop(key, None)
            self.probing.discard(key)
        for key, d in new.items():
            self.inflight.setdefault(key, 0)
            if key not in self.deps or key in modified:
                self.metrics.dep_healthy.labels(d.route, d.name).set(0 if key in self.cooled else 1)
        self.deps = new
        self._synced = 0.0  # read shared cool-downs of new deployments with the next request

    def forget(self, keys: set[str]) -> None:
        """Drop what is left of deployments a reload removed (their last request has finished)."""
        for key in keys:
            if key in self.deps:
                continue
            for state in (self.cooled, self.latency, self.oks, self.inflight):
                state.pop(key, None)
            self.probing.discard(key)
            route, _, name = key.partition("/")
            with contextlib.suppress(KeyError):
                self.metrics.dep_healthy.remove(route, name)

    def available(self, route: Route) -> list[Deployment]:
        now = time.time()
        return [d for d in route.deployments if self.cooled.get(d.key, 0.0) <= now]

    def pick(self, route: Route, exclude: set[str]) -> Deployment | None:
        """The next deployment by the route's strategy, preferring ones this request has not tried."""
        deps = route.deployments
        if len(deps) == 1 and not exclude and not self.cooled:  # the common case, decided at once
            return deps[0]
        candidates = self.available(route)
        fresh = [d for d in candidates if d.key not in exclude]
        pool = fresh or candidates
        if not pool:
            return None
        if len(pool) == 1:
            return pool[0]
        if route.strategy == "weighted":
            return random.choices(pool, weights=[d.weight for d in pool])[0]
        if route.strategy == "latency":
            unknown = [d for d in pool if d.key not in self.latency]
            if unknown:
                return random.choice(unknown)
            return min(pool, key=lambda d: self.latency[d.key] * (1 + self.inflight[d.key]))
        low = min(self.inflight[d.key] for d in pool)
        return random.choice([d for d in pool if self.inflight[d.key] == low])

    def observe_latency(self, dep: Deployment, seconds: float) -> None:
        old = self.latency.get(dep.key)
        self.latency[dep.key] = seconds if old is None else old + EWMA_ALPHA * (seconds - old)

    async def report(self, dep: Deployment, ok: bool) -> None:
        """Count one result for the breaker."""
        key = dep.key
        if key in self.cooled and self.cooled[key] <= time.time():  # cool-down over, not yet synced
            del self.cooled[key]
            self.probing.add(key)
        probe = key in self.probing
        if ok:
            self.oks[key] = self.oks.get(key, 0) + 1
            if not probe:
                return  # successes travel with the next failure: no store round trip on the hot path
            self.probing.discard(key)
            self.metrics.dep_healthy.labels(dep.route, dep.name).set(1)
        c = self.cfg
        verdict = await self.store.record_result(
            key,
            self.oks.pop(key, 0),
            not ok,
            failures=1 if probe else c.failures,
            ratio=c.error_ratio,
            window_s=c.window_s,
            min_requests=c.min_requests,
            cooldown_s=c.cooldown_s,
        )
        if verdict.tripped:
            self._cool(key, verdict.cooldown_until)

    def ready(self, table: RouteTable) -> dict[str, bool]:
        """Per route: whether it has a deployment that is not cooled down (GET /health/ready)."""
        return {name: bool(self.available(r)) for name, r in table.routes.items()}
