"""Resolve `llmops try`: where the prompt goes, in which dialect, and every sampling value with its origin.

Precedence for each value (the shared `llmops.settings.Resolver`): flags > environment
(`LLMOPS_TRY_<NAME>`) > workspace (`try:` in llmops.yaml) > the model profile's `sampling:` > the server's
own default (not sent). A preset fills in its values just below the explicit values of the layer it was
chosen in: `--preset creative --temperature 0.5` sends 0.5, and creative's top_p beats the profile's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from llmops.bench.endpoints import normalize_target
from llmops.bench.run import Prices
from llmops.errors import EnvironmentMissing, NotFoundError, UsageError
from llmops.sampling.dialects import (
    Dialect,
    dialect_for_engine,
    dialect_for_provider,
    dialect_for_url,
    fit_value,
    show_value,
)
from llmops.sampling.params import COMPARABLE, PARAMS, check_value, parse_value
from llmops.sampling.presets import get_preset
from llmops.settings import Resolved, Resolver, Setting

API_KEY_ENV = "LLMOPS_TRY_API_KEY"  # a client key for a --target (a gateway's); never read from a file
DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT = 120.0
_RANK = {
    "flag": 0,
    "env": 1,
    "workspace": 2,
    "profile": 3,
    "checkpoint": 3,
    "node": 3.5,
    "derived": 3.9,
    "default": 4,
}


@dataclass(kw_only=True)
class TryFlags:
    """The command line as given (None = not set)."""

    model_ref: str | None = None
    prompt: str = ""
    target: str | None = None
    system: str | None = None
    provider: str | None = None
    node: str | None = None
    preset: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)  # temperature=..., stop=[...], only those set
    n: int | None = None
    logprobs: int | None = None
    compare: str | None = None
    repeat: int | None = None
    timeout: float | None = None


@dataclass
class Variant:
    """One setting to run: the label shown over its column, and the values sent."""

    label: str
    values: dict[str, Setting]  # llmops names; only values that are sent
    notes: list[str] = field(default_factory=list)  # values dropped or adjusted, and why

    def sent(self) -> dict[str, Any]:
        return {k: s.value for k, s in self.values.items()}


@dataclass
class TryPlan:
    """Everything a run needs, resolved and checked before anything is sent or served."""

    model: str  # the name sent in requests ("" = ask the target)
    target: str | None  # base URL; None: serve `model_profile` first
    dialect: Dialect
    messages: list[dict[str, str]]
    variants: list[Variant]
    compare_param: str | None
    answers_per_variant: int
    logprobs: int | None
    timeout: float
    settings: Resolved  # everything resolved, with origins, for --json and --dry-run
    api_key: str | None = field(default=None, repr=False)
    prices: Prices | None = None
    model_profile: Any = None  # Loaded[ModelProfile] when a profile is involved
    node_profile: Any = None
    provider: str | None = None

    @property
    def needs_server(self) -> bool:
        return self.target is None


@dataclass
class Sampling:
    """Resolved sampling values, and which of them the preset supplied (those adapt to an endpoint)."""

    values: dict[str, Setting]
    preset: str | None = None
    from_preset: set[str] = field(default_factory=set)

    def source(self, name: str) -> str:
        s = self.values[name]
        return f"preset {self.preset}" if name in self.from_preset else f"the {s.origin}"

    def explicit(self, name: str) -> bool:
        """Set by the user for this run (a flag), not inherited from a preset or a profile."""
        return self.values[name].origin == "flag" and name not in self.from_preset


def resolve_sampling(
    flags: dict[str, Any], preset: Setting, workspace: Any, profile: dict[str, Any]
) -> Sampling:
    """Every sampling parameter by precedence, the preset's values slotted in at the preset's own layer."""
    r = Resolver(section="try", workspace=workspace)
    chosen = get_preset(preset.value) if preset.value else None
    out = Sampling({}, chosen.name if chosen else None)
    for name in PARAMS:
        r.take(name, flags.get(name), profile=profile.get(name))
        s = r.resolved[name]
        if chosen is not None and name in chosen.values and _RANK[s.origin] > _RANK[preset.origin]:
            s = Setting(chosen.values[name], preset.origin)
            out.from_preset.add(name)
        out.values[name] = s
    if out.values["max_tokens"].value is None:
        out.values["max_tokens"] = Setting(DEFAULT_MAX_TOKENS, "default")
    return out


def fit_to_dialect(sampling: Sampling, dialect: Dialect) -> Variant:
    """Keep what the dialect accepts; refuse (flags) or drop with a note (preset, profile) what it does not."""
    kept: dict[str, Setting] = {}
    notes: list[str] = []
    for name, s in sampling.values.items():
        if s.value is None:
            continue
        check_value(name, s.value)
        value, note = fit_value(
            dialect, name, s.value, explicit=sampling.explicit(name), source=sampling.source(name)
        )
        if note:
            notes.append(note)
        if value is not None:
            kept[name] = Setting(value, s.origin)
    return Variant("", kept, notes)


def parse_compare(text: str) -> tuple[str, list[str]]:
    """`temperature=0,0.7,1.2` -> ("temperature", ["0", "0.7", "1.2"])."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not values.strip():
        raise UsageError(
            f"--compare '{text}' is not PARAM=V1,V2,...", hint="e.g. --compare temperature=0,0.7,1.2"
        )
    if name not in COMPARABLE:
        raise UsageError(
            f"--compare: unknown parameter '{name}'", hint=f"choose one of {', '.join(COMPARABLE)}"
        )
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise UsageError(f"--compare '{text}' has no values", hint="e.g. --compare temperature=0,0.7,1.2")
    return name, items


@dataclass
class _Found:
    model: str  # the name sent
    target: str | None  # base URL, None: serve the profile
    dialect: Dialect
    profile_sampling: dict[str, Any] = field(default_factory=dict)
    model_profile: Any = None
    provider: Any = None  # ProviderProfile


def _locate(flags: TryFlags, r: Resolver, workspace: Any, catalog: Any) -> _Found:
    """Which model, at which URL, speaking which dialect (a model profile, a provider model, or a URL)."""
    from llmops.workspace import DEFAULT_MODEL

    target = r.take("target", flags.target)
    _check_url(target)
    provider_name = r.take("provider", flags.provider)
    provider = catalog.provider(provider_name).profile if provider_name else None
    ref = r.take("model", flags.model_ref)
    if ref is None and not (target or provider):  # the workspace's model, as every command defaults
        ref = r.take("model", None, workspace=workspace.model, env="LLMOPS_MODEL", default=DEFAULT_MODEL)

    if provider is not None:
        if not ref:
            example = provider.models[0].name if provider.models else "MODEL"
            raise UsageError(f"which {provider.name} model?", hint=f'name one: llmops try {example} "..."')
        url = target or provider.base_url
        if not url:
            raise UsageError(f"provider '{provider.name}' has no base_url", hint="pass --target URL")
        return _Found(ref, url, dialect_for_provider(provider.api), provider=provider)
    if not ref:  # a bare --target: its first model
        return _Found("", target, dialect_for_url(target or ""))
    try:
        loaded = catalog.model(ref)
    except NotFoundError as missing:
        owner = _provider_of(ref, catalog)
        if owner is not None:
            return _Found(ref, target or owner.base_url, dialect_for_provider(owner.api), provider=owner)
        if not target:
            raise NotFoundError(
                f"'{ref}' is neither a model profile nor a provider's model",
                hint=f"{missing.hint}; or pass --target URL to send it to a server (a gateway route)",
            ) from None
        return _Found(ref, target, dialect_for_url(target))
    prof = loaded.profile
    return _Found(
        prof.serving.served_model_name or prof.name,
        target,
        dialect_for_engine(prof.engine),
        prof.sampling.as_request_fields(),
        model_profile=loaded,
    )


def _provider_of(model: str, catalog: Any) -> Any:
    for loaded in catalog.all("provider"):
        if loaded.profile.model(model) is not None:
            return loaded.profile
    return None


def _api_key(found: _Found) -> str | None:
    """The provider's key from its variable; for any other target, $LLMOPS_TRY_API_KEY (a gateway key)."""
    p = found.provider
    if p is not None and p.api_key_env:
        key = os.environ.get(p.api_key_env) or None
        if key is None and p.api in ("openai", "anthropic", "google") and found.target == p.base_url:
            raise EnvironmentMissing(
                f"{p.name} needs an API key in ${p.api_key_env}",
                hint=f"export {p.api_key_env}=... (llmops never writes or prints it)",
            )
        return key or os.environ.get(API_KEY_ENV) or None
    return os.environ.get(API_KEY_ENV) or None


def _prices(provider: Any, model: str) -> Prices | None:
    entry = provider.model(model) if provider is not None else None
    if entry is None:
        return None
    return Prices(entry.input_per_1m, entry.output_per_1m, f"{provider.name} list prices for {model}")


def resolve(flags: TryFlags, workspace: Any, catalog: Any) -> TryPlan:
    """The whole plan, checked: every problem is a UsageError (exit 2) before anything is sent."""
    ws = workspace.try_
    r = Resolver(section="try", workspace=ws)
    found = _locate(flags, r, workspace, catalog)
    dialect = found.dialect

    preset_name = r.take("preset", flags.preset)
    preset = get_preset(preset_name) if preset_name else None  # an unknown preset: exit 2 now
    system = r.take("system", flags.system)
    timeout = r.take("timeout", flags.timeout, default=DEFAULT_TIMEOUT)
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g} must be positive", hint="seconds for a whole answer")

    base = resolve_sampling(flags.sampling, r.resolved["preset"], ws, found.profile_sampling)
    r.resolved.update(base.values)
    if flags.n is not None:
        n = r.set("n", flags.n, "flag")
    elif preset is not None and preset.n > 1:  # explore: five candidates
        n = r.set("n", preset.n, r.resolved["preset"].origin)
    else:
        n = r.set("n", 1, "default")
    repeat = flags.repeat or 1
    if n < 1 or repeat < 1:
        raise UsageError("--n and --repeat must be at least 1", hint="e.g. --repeat 3")
    _check_logprobs(flags.logprobs, dialect)
    r.set("logprobs", flags.logprobs, "flag" if flags.logprobs is not None else "default")

    compare_param, variants = _variants(flags, base, ws, found, dialect)
    if not flags.prompt.strip():
        raise UsageError("the prompt is empty", hint='llmops try MODEL "your prompt" (or - to read stdin)')
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": flags.prompt}
    ]

    node = None
    if found.target is None and found.model_profile is not None:
        from llmops.workspace import DEFAULT_NODE

        prof = found.model_profile.profile
        node_name = r.take(
            "node",
            flags.node,
            workspace=workspace.node,
            profile=prof.default_node,
            default=DEFAULT_NODE,
            env="LLMOPS_NODE",
        )
        node = catalog.node(node_name)
    elif flags.node:
        raise UsageError("--node applies only when llmops serves the model", hint="drop --node with --target")

    return TryPlan(
        model=found.model,
        target=normalize_target(found.target, dialect.endpoint) if found.target else None,
        dialect=dialect,
        messages=messages,
        variants=variants,
        compare_param=compare_param,
        answers_per_variant=n * repeat,
        logprobs=flags.logprobs,
        timeout=float(timeout),
        settings=r.resolved,
        api_key=_api_key(found),
        prices=_prices(found.provider, found.model),
        model_profile=found.model_profile,
        node_profile=node,
        provider=found.provider.name if found.provider is not None else None,
    )


def _check_logprobs(k: int | None, dialect: Dialect) -> None:
    if k is None:
        return
    if dialect.logprobs is False:
        raise UsageError(
            f"--logprobs: {dialect.label} does not return log-probabilities; nothing was sent",
            hint="drop --logprobs for this endpoint",
        )
    if not 0 <= k <= dialect.max_top_logprobs:
        raise UsageError(
            f"--logprobs {k} is out of range",
            hint=f"ask for 0 to {dialect.max_top_logprobs} alternatives per token",
        )


def _variants(
    flags: TryFlags, base: Sampling, ws: Any, found: _Found, dialect: Dialect
) -> tuple[str | None, list[Variant]]:
    """One variant per --compare value, else the one resolved setting."""
    if not flags.compare:
        v = fit_to_dialect(base, dialect)
        shown = [f"{k}={show_value(s.value)}" for k, s in v.values.items() if k != "max_tokens"]
        v.label = ", ".join(shown) or "server defaults"
        return None, [v]
    param, raw_values = parse_compare(flags.compare)
    variants = []
    for raw in raw_values:
        if param == "preset":
            sampling = resolve_sampling(flags.sampling, Setting(raw, "flag"), ws, found.profile_sampling)
        else:
            value = parse_value(param, raw, source=f"--compare {param}")
            sampling = Sampling(
                {**base.values, param: Setting(value, "flag")}, base.preset, base.from_preset - {param}
            )
        v = fit_to_dialect(sampling, dialect)
        v.label = f"{param}={raw}"
        variants.append(v)
    return param, variants


def _check_url(url: str | None) -> None:
    if url is not None and not url.strip().lower().startswith(("http://", "https://")):
        raise UsageError(
            f"--target '{url}' is not an http(s) URL", hint="e.g. --target http://127.0.0.1:8000/v1"
        )
