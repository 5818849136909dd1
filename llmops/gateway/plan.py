"""What `llmops gateway` will run: settings with their origins, the route table, and a reachability probe."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.gateway.config import DEFAULT_HOST, DEFAULT_PORT, GatewaySection, gateway_section
from llmops.gateway.table import RouteTable, build_table
from llmops.settings import Resolved, Resolver, dry_run_document

if TYPE_CHECKING:
    from llmops.gateway.reload import Loader
    from llmops.profiles.loader import Catalog
    from llmops.workspace import Workspace


@dataclass
class GatewayPlan:
    section: GatewaySection
    table: RouteTable
    settings: Resolved
    usage_path: Path

    @property
    def host(self) -> str:
        return self.settings["host"].value

    @property
    def port(self) -> int:
        return self.settings["port"].value

    @property
    def workers(self) -> int:
        return self.settings["workers"].value


def resolve(
    ws: Workspace,
    catalog: Catalog | None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> GatewayPlan:
    """Flags > LLMOPS_GATEWAY_* environment > workspace > defaults, and the route table."""
    from llmops.gateway.usage import default_path

    sec = gateway_section(ws)
    r = Resolver(section="gateway", workspace=sec)
    r.take("host", host, default=DEFAULT_HOST)
    r.take("port", port, default=DEFAULT_PORT)
    r.take("workers", workers, default=1)
    redis = r.take("redis")
    usage = Path(r.take("usage_log", default=str(default_path())))
    if redis != sec.redis or str(usage) != sec.usage_log:
        sec = sec.model_copy(update={"redis": redis, "usage_log": str(usage)})
    return GatewayPlan(sec, build_table(sec, catalog, ws), r.resolved, usage)


def loader(
    config: Path | None,
    profiles_dir: Path | None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> Loader:
    """What a reload runs (in a thread): the workspace file and the profiles read again and resolved with
    the flags the gateway started with; every problem raised as at start-up (file:line, and the listen
    checks: a reload cannot leave a gateway open beyond loopback without keys)."""

    def load() -> tuple[GatewaySection, RouteTable]:
        from llmops.gateway.server import check_listen
        from llmops.profiles.loader import Catalog
        from llmops.workspace import load_workspace

        plan = resolve(
            load_workspace(config), Catalog.discover(profiles_dir), host=host, port=port, workers=workers
        )
        check_listen(
            plan.section, plan.host, plan.workers
        )  # e.g. no keys left while listening beyond loopback
        return plan.section, plan.table

    return load


def probe(
    table: RouteTable, timeout_s: float = 3.0, environ: dict[str, str] | None = None
) -> dict[str, dict]:
    """GET each deployment's model list: does it answer? (Keys sent as the gateway would; never shown.)"""
    import httpx

    env = os.environ if environ is None else environ
    results: dict[str, dict] = {}
    with httpx.Client(timeout=timeout_s) as client:
        for route in table.routes.values():
            for d in route.deployments:
                if d.key in results:
                    continue
                headers = {}
                key = env.get(d.api_key_env) if d.api_key_env else None
                if d.api_key_env and not key:
                    results[d.key] = {"ok": False, "detail": f"{d.api_key_env} is not set"}
                    continue
                if key:
                    headers = (
                        {"x-api-key": key, "anthropic-version": "2023-06-01"}
                        if d.api == "anthropic"
                        else {"authorization": f"Bearer {key}"}
                    )
                try:
                    r = client.get(d.url_for("/models"), headers=headers)
                    ok = r.status_code < 500 and r.status_code not in (401, 403)
                    results[d.key] = {"ok": ok, "detail": f"HTTP {r.status_code}"}
                except httpx.HTTPError as exc:
                    results[d.key] = {"ok": False, "detail": f"{type(exc).__name__}"}
    return results


def describe(plan: GatewayPlan, probes: dict[str, dict] | None) -> dict[str, Any]:
    """The --dry-run document: settings with origins, routes, deployments, keys by name, limits."""
    sec = plan.section
    routes = []
    for r in plan.table.routes.values():
        deps = []
        for d in r.deployments:
            doc = d.describe()
            if probes is not None:
                doc["probe"] = probes.get(d.key)
            deps.append(doc)
        routes.append(
            {
                "name": r.name,
                "aliases": r.aliases,
                "strategy": r.strategy,
                "fallbacks": r.fallbacks,
                "retries": r.retries,
                "timeouts": r.timeouts.model_dump(),
                "deployments": deps,
            }
        )
    keys = [
        {
            "name": k.name,
            "from": f"${k.key_env}" if k.key_env else "key_sha256",
            "routes": k.routes,
            "rpm": k.rpm,
            "tpm": k.tpm,
            "budget_usd": k.budget_usd,
            "budget_route": k.budget_route,
        }
        for k in sec.keys
    ]
    doc = dry_run_document(
        "gateway",
        plan.settings,
        routes=routes,
        keys=keys,
        breaker=sec.breaker.model_dump(),
        retries=sec.retries.model_dump(),
        shared_state="redis" if sec.redis else "memory (one process)",
    )
    if sec.redis:  # a password in the URL stays out of the document
        doc["settings"]["redis"]["value"] = mask_url(sec.redis)
    return doc


def mask_url(url: str) -> str:
    """The URL with its password replaced by *** (redis://user:***@host:6379/0), fit for output and errors."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
