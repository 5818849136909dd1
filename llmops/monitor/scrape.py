"""One look at an endpoint: its /metrics parsed into labelled samples, /health, and its models.

The parser is prometheus_client's own (the same library that writes the gateway's and vLLM's metrics).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

Labels = dict[str, str]
Samples = dict[str, list[tuple[Labels, float]]]  # wire name -> [(labels, value)]


def root_of(url: str) -> str:
    """http://h:p/v1 -> http://h:p (where /metrics and /health live)."""
    u = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    path = u.path.rstrip("/").removesuffix("/v1")
    return urlunsplit((u.scheme, u.netloc.rsplit("@", 1)[-1], path, "", ""))


def parse(text: str) -> Samples:
    """Prometheus text exposition -> {wire name: [(labels, value)]}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


@dataclass
class Scrape:
    """What one visit to an endpoint saw. `t` is time.monotonic() when /metrics answered."""

    url: str
    t: float = 0.0
    reachable: bool = False
    health_status: int | None = None
    models: list[str] = field(default_factory=list)
    metrics_status: int | None = None
    samples: Samples = field(default_factory=dict)
    error: str | None = None

    @property
    def has_metrics(self) -> bool:
        return self.metrics_status == 200 and bool(self.samples)

    def kind(self) -> str:
        names = self.samples.keys()
        if any(n.startswith(("llm_requests", "llmops_gateway_")) for n in names):
            return "gateway"
        if any(n.startswith("vllm:") for n in names):
            return "vllm"
        if any(n.startswith("llamacpp:") for n in names):
            return "llamacpp"
        return "unknown"

    def select(self, name: str, **match: Any) -> list[tuple[Labels, float]]:
        """Samples of a wire name whose labels match: a string, a tuple of allowed values, or a callable."""

        def ok(labels: Labels) -> bool:
            for k, want in match.items():
                have = labels.get(k)
                if callable(want):
                    if not want(have):
                        return False
                elif isinstance(want, tuple):
                    if have not in want:
                        return False
                elif have != want:
                    return False
            return True

        return [(lab, v) for lab, v in self.samples.get(name, []) if ok(lab)]

    def total(self, name: str, **match: Any) -> float | None:
        found = self.select(name, **match)
        return sum(v for _, v in found) if found else None

    def peak(self, name: str, **match: Any) -> float | None:
        found = self.select(name, **match)
        return max(v for _, v in found) if found else None

    def buckets(self, family: str, **match: Any) -> dict[float, float]:
        """A histogram's cumulative buckets summed over every other label."""
        out: dict[float, float] = {}
        for labels, v in self.select(f"{family}_bucket", **match):
            le = math.inf if labels.get("le") in ("+Inf", "Inf") else float(labels.get("le", "nan"))
            out[le] = out.get(le, 0.0) + v
        return out

    def group(self, name: str, *keys: str, **match: Any) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for labels, v in self.select(name, **match):
            k = tuple(labels.get(key, "") for key in keys)
            out[k] = out.get(k, 0.0) + v
        return out


def scrape(url: str, client: Any = None, timeout: float = 3.0) -> Scrape:
    """Visit /health, /v1/models and /metrics of the endpoint at `url` (any of them may be missing)."""
    import httpx

    root = root_of(url)
    own = client is None
    client = client or httpx.Client(timeout=timeout, trust_env=False)
    s = Scrape(url=root)
    try:
        try:
            r = client.get(root + "/health")
            s.reachable, s.health_status = True, r.status_code
        except httpx.HTTPError as exc:
            s.error = f"cannot reach {root}: {type(exc).__name__}"
            return s
        try:
            r = client.get(root + "/v1/models")
            if r.status_code == 200:
                s.models = [m.get("id", "") for m in r.json().get("data", [])]
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        try:
            r = client.get(root + "/metrics")
            s.t = time.monotonic()
            s.metrics_status = r.status_code
            if r.status_code == 200:
                s.samples = parse(r.text)
        except (httpx.HTTPError, ValueError) as exc:
            s.error = f"/metrics unreadable: {exc}"
    finally:
        if own:
            client.close()
    return s
