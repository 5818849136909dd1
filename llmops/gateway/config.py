"""The `gateway:` section of llmops.yaml: keys, routes, deployments, limits, timeouts.

Only the shape lives here (pydantic, unknown keys are errors); `table.py` resolves it against the
profiles into the route table the request path uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from llmops.gateway.cache.config import CacheSetting
from llmops.gateway.guard.config import GuardSetting
from llmops.gateway.tracing import OtelConfig
from llmops.profiles.schema import Name, StrictModel

if TYPE_CHECKING:
    from llmops.workspace import Workspace

EnvVar = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
Strategy = Literal["least-busy", "weighted", "latency"]
DEFAULT_PORT = 4000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BODY = 8 * 1024 * 1024
ADMIN_KEY_ENV = "LLMOPS_GATEWAY_ADMIN_KEY"


class Timeouts(StrictModel):
    """What 'too slow' means for one request; streams are judged chunk by chunk."""

    connect_s: PositiveFloat = Field(default=5.0, description="TCP connect to a deployment")
    first_byte_s: PositiveFloat = Field(default=60.0, description="request sent -> first response byte")
    stall_s: PositiveFloat = Field(default=15.0, description="longest silence between two stream chunks")
    total_s: PositiveFloat = Field(default=600.0, description="the whole request, retries included")


class RouteTimeouts(StrictModel):
    """Per-route overrides of the section's timeouts (unset fields keep the section's value)."""

    connect_s: PositiveFloat | None = None
    first_byte_s: PositiveFloat | None = None
    stall_s: PositiveFloat | None = None
    total_s: PositiveFloat | None = None


class Retries(StrictModel):
    attempts: Annotated[int, Field(ge=0, le=10)] = Field(
        default=2, description="retries after the first try (connect errors, 429, 5xx, timeouts)"
    )
    backoff_s: Annotated[float, Field(ge=0)] = Field(
        default=0.05, description="base of the exponential back-off between tries on the same deployment"
    )
    max_retry_after_s: Annotated[float, Field(ge=0)] = Field(
        default=10.0, description="a Retry-After longer than this is not waited for (try elsewhere)"
    )


class Breaker(StrictModel):
    """Per-deployment circuit breaker: trip, cool down, probe, readmit."""

    failures: PositiveInt = Field(default=5, description="consecutive failures that trip it")
    error_ratio: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=0.5, description="or this failure share over `window_s` (with at least `min_requests`)"
    )
    window_s: PositiveFloat = 30.0
    min_requests: PositiveInt = 20
    cooldown_s: PositiveFloat = Field(default=30.0, description="how long a tripped deployment rests")


class DeploymentConfig(StrictModel):
    """One upstream: a URL, a model profile, or a provider model."""

    name: str | None = Field(default=None, description="shown in headers and metrics (default: url + model)")
    url: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    model: str | None = Field(default=None, description="model name sent upstream")
    profile: str | None = Field(default=None, description="a model profile (its served name and endpoint)")
    provider: str | None = Field(default=None, description="a provider profile (base URL, key, prices)")
    api: Literal["openai", "anthropic"] | None = Field(
        default=None, description="upstream API (default: the provider's, else openai)"
    )
    api_key_env: EnvVar | None = Field(default=None, description="variable holding the upstream key")
    weight: PositiveFloat = Field(default=1.0, description="share of traffic with strategy: weighted")
    responses: bool | None = Field(
        default=None,
        description="serves /v1/responses (default: vLLM profiles and the OpenAI API; llama.cpp does not)",
    )
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    input_per_1m: Annotated[float, Field(ge=0)] | None = None
    output_per_1m: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _has_target(self) -> DeploymentConfig:
        if not (self.url or self.provider or self.profile):
            raise ValueError("give url (with model), provider (with model) or profile")
        if self.provider and not self.model:
            raise ValueError("a provider deployment needs model: (the provider's model name)")
        if self.url and not (self.model or self.profile):
            raise ValueError("a url deployment needs model: (the name the server expects)")
        return self


class RouteConfig(StrictModel):
    name: Name = Field(description='what clients put in "model"')
    aliases: list[Name] = Field(default_factory=list)
    deployments: list[DeploymentConfig] = Field(min_length=1)
    fallbacks: list[Name] = Field(default_factory=list, description="routes tried when this one fails")
    strategy: Strategy | None = None
    timeouts: RouteTimeouts | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    # Issue 13 (cache and guard) owns the shape of these two; the gateway passes them to its stages.
    cache: CacheSetting = None
    guard: GuardSetting = None


class KeyConfig(StrictModel):
    """A client key: its name is what logs and metrics show; its value never leaves the variable."""

    name: Name
    key_env: EnvVar | None = Field(default=None, description="variable holding the key's value")
    key_sha256: Sha256 | None = Field(default=None, description="hex SHA-256 of the key's value")
    routes: list[Name] | None = Field(default=None, description="routes this key may use (default: all)")
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    budget_usd: PositiveFloat | None = None
    budget_route: Name | None = Field(
        default=None, description="when the budget is spent, send requests here instead of refusing"
    )

    @model_validator(mode="after")
    def _one_secret(self) -> KeyConfig:
        if bool(self.key_env) == bool(self.key_sha256):
            raise ValueError("give exactly one of key_env or key_sha256")
        return self


class GatewaySection(StrictModel):
    """`gateway:` in llmops.yaml."""

    host: str | None = Field(default=None, description=f"listen address (default {DEFAULT_HOST})")
    port: PositiveInt | None = Field(default=None, description=f"listen port (default {DEFAULT_PORT})")
    workers: PositiveInt | None = Field(default=None, description="processes (more than 1 needs redis)")
    redis: str | None = Field(default=None, description="redis://host:port/db for state shared by replicas")
    keys: list[KeyConfig] = Field(default_factory=list)
    routes: list[RouteConfig] | None = Field(
        default=None, description="default: every model profile and provider model by its own name"
    )
    strategy: Strategy = "least-busy"
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retries: Retries = Field(default_factory=Retries)
    breaker: Breaker = Field(default_factory=Breaker)
    max_body_bytes: PositiveInt = DEFAULT_MAX_BODY
    usage_log: str | None = Field(
        default=None, description="JSONL file (default: data dir/gateway/usage.jsonl)"
    )
    log_prompts: bool = Field(default=False, description="also write prompt text to the usage log")
    # Issue 13 (cache and guard) owns the shape of these two.
    cache: CacheSetting = None
    guard: GuardSetting = None
    playground: bool = Field(default=False, description="serve /playground (issue 15)")
    otel: OtelConfig | None = Field(
        default=None, description="OpenTelemetry traces (or the OTEL_EXPORTER_OTLP_* variables)"
    )
    admin_key_env: EnvVar | None = Field(
        default=None,
        description=f"variable holding the key for /admin/ (reload, keys); default {ADMIN_KEY_ENV}; "
        "unset: /admin/ answers loopback callers only",
    )

    @model_validator(mode="after")
    def _names_resolve(self) -> GatewaySection:
        routes = self.routes or []
        names: dict[str, str] = {}
        for r in routes:
            for n in (r.name, *r.aliases):
                if n in names:
                    raise ValueError(f"route name '{n}' is used twice")
                names[n] = r.name
        if self.routes is not None:
            for r in routes:
                for fb in r.fallbacks:
                    if fb not in names:
                        raise ValueError(f"route '{r.name}': fallback '{fb}' is not a route")
            for k in self.keys:
                for rn in [*(k.routes or []), *([k.budget_route] if k.budget_route else [])]:
                    if rn not in names:
                        raise ValueError(f"key '{k.name}': route '{rn}' is not a route")
        seen: set[str] = set()
        for k in self.keys:
            if k.name in seen:
                raise ValueError(f"key name '{k.name}' is used twice")
            seen.add(k.name)
        return self


def gateway_section(ws: Workspace) -> GatewaySection:
    """llmops.yaml's `gateway:` validated (file:line problems); the defaults when the file has none.

    The workspace (a base module) keeps the section as written: its schema lives here, with its owner."""
    from llmops.workspace import owned_section

    return owned_section(ws, "gateway", GatewaySection)
