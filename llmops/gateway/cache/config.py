"""The `cache:` setting of the gateway section and of each route.

    cache:
      exact: {ttl: 3600}            # true | false | mapping; on by default once `cache:` is set
      semantic: {threshold: 0.90}   # true | false | mapping; off by default
      nondeterministic: false       # also cache replies sampled with temperature > 0 (or unset)
      max_entries: 10000            # the in-memory store's bounds (LRU); Redis entries expire by TTL
      max_mb: 256
    routes:
      - name: chat
        cache: {semantic: false}    # a route's keys override the section's, one by one

`cache: true` is `{exact: true}`; `cache: false` turns both layers off.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PositiveInt

from llmops.profiles.schema import StrictModel

DEFAULT_TTL_S = 3600
# The lowest threshold with no wrong hit on every labelled set (0.88), one step up for margin; measured
# with benchmarks/bench_gateway_cache.py --only accuracy (docs/gateway-cache.md has the table).
DEFAULT_THRESHOLD = 0.90


def _flag(value: Any) -> Any:
    """`true`/`false` are the mapping's `enabled:` (so a typo in a mapping gets one clear error)."""
    return {"enabled": value} if isinstance(value, bool) else value


class ExactConfig(StrictModel):
    enabled: bool = True
    ttl: PositiveInt = Field(default=DEFAULT_TTL_S, description="seconds an entry lives")


class SemanticConfig(StrictModel):
    enabled: bool = True
    threshold: Annotated[float, Field(gt=0, le=1)] = Field(
        default=DEFAULT_THRESHOLD, description="cosine similarity a hit needs (whole conversation)"
    )
    ttl: PositiveInt = Field(default=DEFAULT_TTL_S, description="seconds an entry lives")
    verify: bool = Field(
        default=True,
        description="the second check (numbers, units, names, negations, word order must agree); "
        "off brings back the wrong hits a threshold alone gives",
    )


class CacheConfig(StrictModel):
    """The mapping form of `cache:`; unset keys mean 'as the section' (routes) or the default."""

    exact: Annotated[ExactConfig | None, BeforeValidator(_flag)] = None
    semantic: Annotated[SemanticConfig | None, BeforeValidator(_flag)] = None
    nondeterministic: bool | None = Field(
        default=None, description="cache replies sampled with temperature > 0 or unset (default false)"
    )
    max_entries: PositiveInt | None = Field(default=None, description="in-memory store: most entries kept")
    max_mb: PositiveInt | None = Field(default=None, description="in-memory store: most MiB kept")


CacheSetting = Annotated[
    CacheConfig | None,
    BeforeValidator(
        lambda v: {"exact": True} if v is True else {"exact": False, "semantic": False} if v is False else v
    ),
]


class RouteCache:
    """A route's effective cache settings (section merged under the route's own)."""

    __slots__ = ("exact", "nondeterministic", "semantic")

    def __init__(self, exact: ExactConfig | None, semantic: SemanticConfig | None, nondeterministic: bool):
        self.exact = exact
        self.semantic = semantic
        self.nondeterministic = nondeterministic

    @property
    def on(self) -> bool:
        return self.exact is not None or self.semantic is not None


def _pick(route: Any, section: Any, default: Any) -> Any:
    return route if route is not None else section if section is not None else default


def _resolve(value: Any) -> Any:
    return value if value is not None and value.enabled else None


def effective(section: CacheConfig | None, route: CacheConfig | None) -> RouteCache:
    """The cache a route gets. Nothing configured anywhere: off. `cache:` set: exact on unless turned off."""
    if section is None and route is None:
        return RouteCache(None, None, False)
    s, r = section or CacheConfig(), route or CacheConfig()
    exact = _resolve(_pick(r.exact, s.exact, ExactConfig()))
    semantic = _resolve(_pick(r.semantic, s.semantic, None))
    return RouteCache(exact, semantic, bool(_pick(r.nondeterministic, s.nondeterministic, False)))
