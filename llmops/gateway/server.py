"""Run the gateway in the foreground on uvicorn (uvloop + httptools); Ctrl-C drains, then stops."""

from __future__ import annotations

import contextlib
import gc
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.errors import UsageError
from llmops.gateway.config import GatewaySection
from llmops.gateway.table import RouteTable

if TYPE_CHECKING:
    from llmops.gateway.reload import Loader

DRAIN_S = 30  # how long Ctrl-C waits for requests in flight
GC_GEN0 = 20_000  # collect the youngest generation after this many new live objects (CPython's: 700)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(section: GatewaySection, host: str, workers: int) -> None:
    """Refuse what would be unsafe or wrong: open to the network without keys, workers without shared state."""
    if not section.keys and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} with no client keys: anyone could spend your providers' money",
            hint="add keys: to the gateway section, or listen on 127.0.0.1",
        )
    if workers > 1:
        # One process per replica: a scrape of /metrics must see the whole replica, and without redis the
        # limits would be per process. Scale out with replicas sharing redis (`--k8s` writes an HPA).
        hint = "run more replicas that share gateway.redis (llmops gateway --k8s writes an HPA)"
        if not section.redis:
            hint = "set gateway.redis: redis://host:6379/0 and " + hint
        raise UsageError(f"--workers {workers}: the gateway runs one process per replica", hint=hint)


def require_extras(section: GatewaySection) -> None:
    """The gateway extra's packages, or exit 3 naming `pip install 'llmops[gateway]'`."""
    from llmops.errors import require_module

    for module, package in (
        ("uvicorn", "uvicorn"),
        ("aiohttp", "aiohttp"),
        ("prometheus_client", "prometheus-client"),
    ):
        require_module(module, package=package, extra="gateway", purpose="llmops gateway")
    if section.redis:
        require_module("redis", extra="gateway", purpose="gateway.redis")


def build(
    section: GatewaySection, table: RouteTable, usage_path: Path | None = None, loader: Loader | None = None
) -> Any:
    """The ASGI app for this configuration (the gateway starts on the app's lifespan); `loader` re-reads
    the configuration for `llmops gateway reload` and SIGHUP."""
    from llmops.gateway.app import create_app
    from llmops.gateway.pipeline import Gateway

    return create_app(Gateway(section, table, usage_path=usage_path, loader=loader))


def serve(
    section: GatewaySection,
    table: RouteTable,
    *,
    host: str,
    port: int,
    workers: int = 1,
    usage_path: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
    loader: Loader | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; requests in flight get DRAIN_S seconds to finish."""
    check_listen(section, host, workers)
    require_extras(section)
    import uvicorn

    app = build(section, table, usage_path, loader)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # No X-Forwarded-For rewriting: nothing here reads the client address but the cache admin paths,
        # which refuse proxied requests themselves (a middleware layer less on every request).
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=DRAIN_S,
        backlog=4096,
        ws="none",  # no websocket endpoints: skip importing a websocket implementation
        interface="asgi3",
    )
    server = uvicorn.Server(config)
    _after_startup(server, on_ready, f"http://{host}:{port}")
    # SIGINT/SIGTERM: stop accepting, let requests in flight finish, then return; uvicorn re-raises the
    # signal it captured once it has drained, which here is the normal end.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()


def _after_startup(server: Any, on_ready: Callable[[str], None] | None, url: str) -> None:
    """Once uvicorn listens: freeze what start-up made out of the garbage collector's reach, then announce.

    Modules, the route table and the stages live as long as the process; left in the collector's
    generations, every full collection walks them all (a 17-26 ms pause under load, measured: every
    request in flight waits). `gc.freeze()` moves them to a permanent generation, so collections only
    walk what requests allocate.

    Then the youngest generation collects after GC_GEN0 more live container objects instead of 700.
    A request's objects live as long as its stream (a fifth of a second here), so at 700 they survive
    a dozen young collections and are walked again in generations 1 and 2: at c=64 the loop-lag trace
    counted a young collection in one 10 ms tick of five, and 1.8-2.4 ms pauses in generations 1 and 2
    (benchmarks/bench_tail.py --attribute). Counted net of frees, the threshold is reached only by
    objects that outlive their requests (reference cycles), so collections become rare."""
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        if server.started:
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])
            if on_ready is not None:
                on_ready(url)

    server.startup = startup
