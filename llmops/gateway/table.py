"""The route table: the gateway section resolved against the profiles, built once at start-up.

A deployment may be a bare URL, a model profile (its served name, at its `url:` or the endpoint
`llmops serve` gives it) or a provider model (base URL, key variable, prices and limits from the provider
profile). Without `routes:`, every model profile and provider model is a route of its own name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llmops.errors import NotFoundError, UsageError
from llmops.gateway.config import (
    DeploymentConfig,
    GatewaySection,
    RouteConfig,
    Strategy,
    Timeouts,
)

if TYPE_CHECKING:
    from llmops.profiles.loader import Catalog
    from llmops.workspace import Workspace

UpstreamApi = Literal["openai", "anthropic"]
SERVE_DEFAULT_URL = "http://127.0.0.1:{port}/v1"


@dataclass
class Deployment:
    """One upstream endpoint of a route, ready to call."""

    name: str
    route: str
    base_url: str
    model: str
    api: UpstreamApi = "openai"
    api_key_env: str | None = None
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    input_per_1m: float = 0.0
    output_per_1m: float = 0.0
    cached_input_per_1m: float | None = None
    origin: str = "url"  # url | profile:NAME | provider:NAME
    responses: bool = False  # serves the Responses API (/v1/responses)
    # Identity in shared state and metrics: route + name (a deployment can serve two routes). Made once:
    # the request path reads it several times per request.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = f"{self.route}/{self.name}"

    def url_for(self, path: str) -> str:
        """The upstream URL for an OpenAI path ('/chat/completions') or Anthropic's '/messages'."""
        base = self.base_url.rstrip("/")
        if self.api == "anthropic" and not base.endswith("/v1"):
            base += "/v1"
        return base + path

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """USD at the deployment's prices; cached input at its discounted price when one is known."""
        cached_price = self.input_per_1m if self.cached_input_per_1m is None else self.cached_input_per_1m
        fresh = max(0, input_tokens - cached_tokens)
        return (
            fresh * self.input_per_1m + cached_tokens * cached_price + output_tokens * self.output_per_1m
        ) / 1e6

    def describe(self) -> dict[str, Any]:
        """For --dry-run: everything but secrets (the key only by its variable's name)."""
        return {
            "name": self.name,
            "url": self.base_url,
            "model": self.model,
            "api": self.api,
            "api_key_env": self.api_key_env,
            "weight": self.weight,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "input_per_1m": self.input_per_1m,
            "output_per_1m": self.output_per_1m,
            "from": self.origin,
            "responses": self.responses,
        }


@dataclass
class Route:
    name: str
    deployments: list[Deployment]
    fallbacks: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    strategy: Strategy = "least-busy"
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 2
    cache: Any = None  # issue 13's per-route settings, passed through as written
    guard: Any = None


@dataclass
class RouteTable:
    routes: dict[str, Route]  # by name
    names: dict[str, str]  # every name and alias -> route name

    def get(self, name: str) -> Route | None:
        canonical = self.names.get(name)
        return self.routes[canonical] if canonical else None

    def close_matches(self, name: str) -> list[str]:
        return difflib.get_close_matches(name, list(self.names), n=3, cutoff=0.5)

    def lookup(self, name: str) -> Route:
        route = self.get(name)
        if route is None:
            near = self.close_matches(name)
            hint = f"did you mean {', '.join(repr(n) for n in near)}?" if near else "see GET /v1/models"
            raise NotFoundError(f"unknown route '{name}'", hint=hint)
        return route


def _timeouts(section: GatewaySection, route: RouteConfig | None) -> Timeouts:
    if route is None or route.timeouts is None:
        return section.timeouts
    override = route.timeouts.model_dump(exclude_none=True)
    return section.timeouts.model_copy(update=override)


def _serve_url(ws: Workspace | None) -> str:
    port = ws.serve.port if ws is not None and ws.serve.port else 8000
    return SERVE_DEFAULT_URL.format(port=port)


def resolve_deployment(
    d: DeploymentConfig, route: str, catalog: Catalog | None, ws: Workspace | None = None
) -> Deployment:
    """A configured deployment with everything the profiles say filled in."""
    api: UpstreamApi = d.api or "openai"
    key_env = d.api_key_env
    base_url = d.url
    model = d.model
    prices: dict[str, float | None] = {"input_per_1m": 0.0, "output_per_1m": 0.0, "cached_input_per_1m": None}
    rpm, tpm = d.rpm, d.tpm
    origin = "url"
    responses = False
    if d.provider:
        if catalog is None:
            raise UsageError(f"route '{route}': provider deployments need the profiles")
        provider = catalog.provider(d.provider).profile
        origin = f"provider:{provider.name}"
        api = d.api or ("anthropic" if provider.api == "anthropic" else "openai")
        base_url = d.url or provider.base_url
        if not base_url:
            raise UsageError(f"route '{route}': provider '{provider.name}' has no base_url; add url:")
        key_env = d.api_key_env or provider.api_key_env
        pm = provider.model(str(model))
        if pm is None:
            known = [m.name for m in provider.models]
            near = difflib.get_close_matches(str(model), known, n=3)
            raise NotFoundError(
                f"route '{route}': provider '{provider.name}' has no model '{model}'",
                hint=f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(known)}",
            )
        prices = {
            "input_per_1m": pm.input_per_1m,
            "output_per_1m": pm.output_per_1m,
            "cached_input_per_1m": pm.cached_input_per_1m,
        }
        rpm = rpm or pm.rpm or provider.rpm
        tpm = tpm or pm.tpm or provider.tpm
        responses = api == "openai" and "api.openai.com" in base_url
    elif d.profile:
        if catalog is None:
            raise UsageError(f"route '{route}': profile deployments need the profiles")
        profile = catalog.model(d.profile).profile
        origin = f"profile:{profile.name}"
        model = d.model or profile.serving.served_model_name or profile.name
        base_url = d.url or _serve_url(ws)
        responses = profile.engine == "vllm"
    for k in ("input_per_1m", "output_per_1m"):
        if getattr(d, k) is not None:
            prices[k] = getattr(d, k)
    assert base_url and model
    return Deployment(
        name=d.name or f"{model}@{base_url}",
        route=route,
        base_url=base_url.rstrip("/"),
        model=model,
        api=api,
        api_key_env=key_env,
        weight=d.weight,
        rpm=rpm,
        tpm=tpm,
        input_per_1m=float(prices["input_per_1m"] or 0.0),
        output_per_1m=float(prices["output_per_1m"] or 0.0),
        cached_input_per_1m=prices["cached_input_per_1m"],
        origin=origin,
        responses=responses if d.responses is None else d.responses,
    )


def _default_routes(catalog: Catalog) -> list[RouteConfig]:
    """Every model profile and provider model, routable by its own name."""
    routes: list[RouteConfig] = []
    seen: set[str] = set()
    for loaded in catalog.all("model"):
        p = loaded.profile
        if p.name not in seen:
            seen.add(p.name)
            routes.append(RouteConfig(name=p.name, deployments=[DeploymentConfig(profile=p.name)]))
    for loaded in catalog.all("provider"):
        prov = loaded.profile
        for m in prov.models:
            if m.name not in seen:
                seen.add(m.name)
                routes.append(
                    RouteConfig(name=m.name, deployments=[DeploymentConfig(provider=prov.name, model=m.name)])
                )
    return routes


def build_table(
    section: GatewaySection, catalog: Catalog | None = None, ws: Workspace | None = None
) -> RouteTable:
    """Resolve every route and deployment once; unknown profiles are errors now, not at request time."""
    if section.routes is None:
        if catalog is None:
            raise UsageError(
                "the gateway section has no routes:", hint="add routes: to gateway in llmops.yaml"
            )
        configs = _default_routes(catalog)
    else:
        configs = section.routes
    routes: dict[str, Route] = {}
    names: dict[str, str] = {}
    for rc in configs:
        deployments = [resolve_deployment(d, rc.name, catalog, ws) for d in rc.deployments]
        seen: set[str] = set()
        for dep in deployments:
            if dep.name in seen:
                raise UsageError(
                    f"route '{rc.name}': two deployments are both named '{dep.name}'",
                    hint="give each a distinct name:",
                )
            seen.add(dep.name)
        routes[rc.name] = Route(
            name=rc.name,
            deployments=deployments,
            fallbacks=list(rc.fallbacks),
            aliases=list(rc.aliases),
            strategy=rc.strategy or section.strategy,
            timeouts=_timeouts(section, rc),
            retries=section.retries.attempts if rc.retries is None else rc.retries,
            cache=rc.cache,
            guard=rc.guard,
        )
        for n in (rc.name, *rc.aliases):
            names[n] = rc.name
    return RouteTable(routes, names)
