"""Hot reload: one generation of configuration (`Live`), what changed between two, and the drain of the old.

A request reads `gateway.live` once when it arrives and carries that object to its end, so requests in
flight finish on the configuration they started with while new ones see the new table: the swap is one
attribute assignment on the event loop. A generation that was replaced is retired; once its last request
has finished, the stages it alone used are closed and the state of deployments that disappeared goes.
Breaker state and rate-limit windows are keyed by route/deployment and key *names*, so unchanged ones
survive a reload untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.stages import Stage
    from llmops.gateway.table import Deployment, Route, RouteTable

# (section, table) freshly read from the workspace file and the profiles; raises LlmopsError when invalid.
Loader = Callable[[], "tuple[GatewaySection, RouteTable]"]

# Settings a running process cannot take over: they need a restart (the answer says so).
RESTART_SETTINGS = ("host", "port", "workers", "redis", "usage_log", "playground", "admin_key_env", "otel")


def chain(table: RouteTable, route: Route) -> list[Route]:
    """The route, then its fallbacks (and theirs), each once."""
    out, seen, queue = [], set(), [route.name]
    while queue:
        name = queue.pop(0)
        if name in seen or name not in table.routes:
            continue
        seen.add(name)
        r = table.routes[name]
        out.append(r)
        queue.extend(r.fallbacks)
    return out


@dataclass(eq=False)
class Live:
    """One generation of the configuration, everything the request path derives from it built once."""

    generation: int
    section: GatewaySection
    table: RouteTable
    guard: Stage
    cache: Stage
    chains: dict[str, list[Route]] = field(init=False)
    # /v1/responses: each route's chain with only the deployments that serve the Responses API (a route
    # with none of them is absent).
    responses_chains: dict[str, list[Route]] = field(init=False)
    deps: dict[tuple[str, str], Deployment] = field(init=False)
    stages: list[Stage] = field(init=False)
    inflight: int = 0  # requests that started on this generation and have not finished
    retired: bool = False

    def __post_init__(self) -> None:
        t = self.table
        self.chains = {name: chain(t, r) for name, r in t.routes.items()}
        speaking = {
            name: replace(r, deployments=[d for d in r.deployments if d.responses])
            for name, r in t.routes.items()
        }
        self.responses_chains = {}
        for name, routes in self.chains.items():
            kept = [speaking[r.name] for r in routes if speaking[r.name].deployments]
            if kept:
                self.responses_chains[name] = kept
        self.deps = {(d.route, d.name): d for r in t.routes.values() for d in r.deployments}
        self.set_slots(self.guard, self.cache)

    def set_slots(self, guard: Stage, cache: Stage) -> None:
        from llmops.gateway.stages import Stage

        self.guard, self.cache = guard, cache
        self.stages = [s for s in (guard, cache) if type(s) is not Stage]  # the configured ones, in order


def _route_doc(r: Route) -> dict[str, Any]:
    return {
        "deployments": [d.name for d in r.deployments],
        "fallbacks": r.fallbacks,
        "aliases": r.aliases,
        "strategy": r.strategy,
        "timeouts": r.timeouts.model_dump(),
        "retries": r.retries,
        "cache": _dump(r.cache),
        "guard": _dump(r.guard),
    }


def _dump(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def _dep_doc(d: Deployment) -> dict[str, Any]:
    return {**d.describe(), "cached_input_per_1m": d.cached_input_per_1m}


def _split(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "modified": sorted(n for n in set(old) & set(new) if old[n] != new[n]),
    }


def slots_changed(old: GatewaySection, old_t: RouteTable, new: GatewaySection, new_t: RouteTable) -> bool:
    """Whether the guard or cache stage must be built again (their settings, or the set of routes)."""
    if _dump(old.cache) != _dump(new.cache) or _dump(old.guard) != _dump(new.guard):
        return True
    if set(old_t.routes) != set(new_t.routes):
        return True
    return any(
        _dump(r.cache) != _dump(new_t.routes[n].cache) or _dump(r.guard) != _dump(new_t.routes[n].guard)
        for n, r in old_t.routes.items()
    )


def diff(old: GatewaySection, old_t: RouteTable, new: GatewaySection, new_t: RouteTable) -> dict[str, Any]:
    """What a reload changes: routes, deployments (as route/name), keys, settings, and what needs a restart."""
    routes = _split(
        {n: _route_doc(r) for n, r in old_t.routes.items()},
        {n: _route_doc(r) for n, r in new_t.routes.items()},
    )
    deps = _split(
        {d.key: _dep_doc(d) for r in old_t.routes.values() for d in r.deployments},
        {d.key: _dep_doc(d) for r in new_t.routes.values() for d in r.deployments},
    )
    keys = _split({k.name: k.model_dump() for k in old.keys}, {k.name: k.model_dump() for k in new.keys})
    skip = {"keys", "routes", *RESTART_SETTINGS}
    a, b = old.model_dump(exclude=skip), new.model_dump(exclude=skip)
    settings = sorted(k for k in a if a[k] != b[k])
    restart = sorted(k for k in RESTART_SETTINGS if getattr(old, k) != getattr(new, k))
    if old.timeouts.connect_s != new.timeouts.connect_s:
        restart.append("timeouts.connect_s")
    changed = any(v for part in (routes, deps, keys) for v in part.values()) or bool(settings)
    return {
        "changed": changed,
        "routes": routes,
        "deployments": deps,
        "keys": keys,
        "settings": settings,
        "restart_needed": restart,
    }


def summary(changes: dict[str, Any]) -> str:
    """One line for people: 'routes +new -old ~chat; deployments +chat/d2; settings retries'."""
    parts = []
    for what in ("routes", "deployments", "keys"):
        c = changes[what]
        items = (
            [f"+{n}" for n in c["added"]] + [f"-{n}" for n in c["removed"]] + [f"~{n}" for n in c["modified"]]
        )
        if items:
            parts.append(f"{what} {' '.join(items)}")
    if changes["settings"]:
        parts.append(f"settings {', '.join(changes['settings'])}")
    return "; ".join(parts) or "no changes"


class Reloader:
    """Reloads a running gateway (admin call, SIGHUP, or an announcement from another replica through
    redis) and tells the other replicas about reloads and key changes when they share redis."""

    def __init__(self, gateway: Any) -> None:
        self.gw = gateway
        self.lock = asyncio.Lock()
        self.replica = gateway._id_prefix  # messages this replica sent come back to it: ignored
        self._tasks: set[Any] = set()
        self._listener: Any = None
        self._hup = False

    @property
    def redis(self) -> Any:
        return getattr(self.gw.store, "redis", None)

    @property
    def channel(self) -> str:
        return f"{self.gw.store.prefix}:events"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:  # only the main thread may handle signals (a gateway in a test thread has no SIGHUP)
            loop.add_signal_handler(signal.SIGHUP, self._on_hup)
            self._hup = True
        except (ValueError, RuntimeError, NotImplementedError, AttributeError):
            pass
        if self.redis is not None:
            self._listener = loop.create_task(self._listen())

    async def close(self) -> None:
        if self._hup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # the subscription closes before redis does

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_hup(self) -> None:
        self._spawn(self._logged("SIGHUP"))

    async def _logged(self, origin: str, announce: bool = False) -> None:
        """A reload nobody waits for (SIGHUP, another replica's announcement): its result goes to the log."""

        from llmops.errors import LlmopsError

        log = logging.getLogger("llmops.gateway")
        try:
            doc = await self.reload(announce=announce)
        except LlmopsError as exc:  # the old configuration keeps serving
            log.error("reload (%s) refused, configuration unchanged: %s", origin, exc.render())
            return
        except Exception as exc:
            log.exception("reload (%s) failed: %s", origin, exc)
            return
        log.warning("reload (%s): generation %s, %s", origin, doc["generation"], doc["summary"])

    async def reload(self, *, announce: bool = False) -> dict[str, Any]:
        """Re-read, validate completely, swap; raises LlmopsError (nothing changed) when invalid."""

        from llmops.errors import LlmopsError, UsageError
        from llmops.gateway.auth import load_keys
        from llmops.gateway.stages import StageContext, load_slot

        gw = self.gw
        if gw.loader is None:
            raise UsageError(
                "this gateway was not started from a workspace file, so it has nothing to re-read"
            )
        async with self.lock:
            old: Live = gw.live
            try:
                section, table = await asyncio.to_thread(gw.loader)
                config_keys = load_keys(section.keys, gw.upstream.env)
                changes = diff(old.section, old.table, section, table)
                guard, cache = old.guard, old.cache
                if slots_changed(old.section, old.table, section, table):
                    ctx = StageContext(section, table, gw.store, gw.metrics, gw.upstream.env)
                    guard, cache = load_slot("guard", ctx), load_slot("cache", ctx)
            except LlmopsError:
                gw.metrics.reloads.labels("invalid").inc()
                raise
            if changes["changed"]:
                new = Live(old.generation + 1, section, table, guard, cache)
                modified = set(changes["deployments"]["modified"])
                gw.health.update(table, section.breaker, modified)
                gw.upstream.forget(modified)
                gw.live = new  # the swap: new requests see the new table from here on
                gw.keys.set_config(config_keys)
                old.retired = True
                if not old.inflight:
                    self.drained(old)
                gw.metrics.config_generation.set(new.generation)
            gw.metrics.reloads.labels("ok" if changes["changed"] else "unchanged").inc()
        doc: dict[str, Any] = {
            "generation": gw.live.generation,
            "summary": summary(changes),
            "changes": changes,
        }
        if announce:
            doc["announced_to"] = await self.announce("reload")
        return doc

    def drained(self, live: Live) -> None:
        """The last request of a replaced generation finished: release what only it used."""
        self._spawn(self._retire(live))

    async def _retire(self, live: Live) -> None:
        gw = self.gw
        current = gw.live
        for stage in live.stages:
            if stage not in current.stages:
                try:
                    await stage.close()
                except Exception:  # closing must not stop the rest
                    logging.getLogger("llmops.gateway").warning(
                        "closing a replaced stage failed", exc_info=True
                    )
        removed = {d.key for r in live.table.routes.values() for d in r.deployments} - set(gw.health.deps)
        busy = {k for k in removed if gw.health.inflight.get(k)}
        gw.health.forget(removed - busy)
        gw.upstream.forget(removed - busy)

    # --- replicas sharing redis --------------------------------------------------------------------

    async def announce(self, kind: str) -> int:
        """Tell the other replicas (reload, keys); the number of replicas that got it."""

        if self.redis is None:
            return 0
        n = await self.redis.publish(self.channel, json.dumps({"kind": kind, "from": self.replica}))
        return max(0, int(n) - 1)  # this replica listens too

    async def _listen(self) -> None:
        log = logging.getLogger("llmops.gateway")
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self.gw.keys.refresh()  # changes made while (re)connecting
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None:
                        continue
                    try:
                        doc = json.loads(msg["data"])
                    except (TypeError, ValueError):
                        continue
                    if doc.get("from") == self.replica:
                        continue
                    if doc.get("kind") == "keys":
                        await self.gw.keys.refresh()
                    elif doc.get("kind") == "reload":
                        self._spawn(self._logged("announced by another replica"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis away: try again, the keys are re-read once it is back
                log.warning("gateway events from redis: %s; retrying in 1 s", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
