"""Resolve `llmops try`: where the prompt goes, in which dialect, and every sampling value with its origin.

Precedence for each value: flags > environment (LLMOPS_TRY_<NAME>) > workspace (`try:` in llmops.yaml) >
the model profile's `sampling:` > the server's own default (not sent). A preset fills in its values just
below the explicit values of the layer it was chosen in (`--preset creative --temperature 0.5` sends 0.5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from llmops.bench.endpoints import normalize_target
from llmops.bench.run import Prices
from llmops.errors import EnvironmentMissing, NotFoundError, UsageError
from llmops.sampling.dialects import (
    DIALECTS,
    Dialect,
    dialect_for_engine,
    dialect_for_provider,
    dialect_for_url,
)
from llmops.sampling.params import COMPARABLE, PARAMS, check_value, parse_value
from llmops.sampling.presets import Preset, get_preset
from llmops.settings import Setting, pick

ENV_PREFIX = "LLMOPS_TRY_"
API_KEY_ENV = "LLMOPS_TRY_API_KEY"  # a client key for a --target (a gateway's); never read from a file
DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT = 120.0


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
    settings: dict[str, Setting]  # everything resolved, for --json and --dry-run
    api_key: str | None = field(default=None, repr=False)
    prices: Prices | None = None
    model_profile: Any = None  # Loaded[ModelProfile] when a profile is involved
    node_profile: Any = None
    provider: str | None = None

    @property
    def needs_server(self) -> bool:
        return self.target is None

    def settings_json(self) -> dict[str, dict[str, Any]]:
        return {k: {"value": s.value, "origin": s.origin} for k, s in self.settings.items()}


def _env(name: str) -> str | None:
    raw = os.environ.get(ENV_PREFIX + name.upper())
    return raw if raw not in (None, "") else None


def _env_value(name: str) -> Any:
    raw = _env(name)
    return None if raw is None else parse_value(name, raw, source=f"${ENV_PREFIX}{name.upper()}")


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
    """Every sampling parameter by precedence, the preset's values slotted in at its own layer."""
    chosen: Preset | None = get_preset(preset.value) if preset.value else None
    out = Sampling({}, chosen.name if chosen else None)
    for name in PARAMS:
        layers: list[tuple[str, Any, bool]] = [
            ("flag", flags.get(name), False),
            ("env", _env_value(name), False),
            ("workspace", getattr(workspace, name, None), False),
            ("profile", profile.get(name), False),
        ]
        if chosen is not None and preset.origin in ("flag", "env", "workspace"):
            at = [layer[0] for layer in layers].index(preset.origin) + 1
            layers.insert(at, (preset.origin, chosen.values.get(name), True))
        origin, value, by_preset = next((x for x in layers if x[1] is not None), ("default", None, False))
        out.values[name] = Setting(value, origin)  # type: ignore[arg-type]
        if by_preset:
            out.from_preset.add(name)
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
        flag = PARAMS[name].flag
        if name not in dialect.supported:
            if sampling.explicit(name):
                raise UsageError(
                    f"{flag}: {dialect.label} does not support {name}; nothing was sent",
                    hint=f"drop {flag} for this endpoint",
                )
            notes.append(
                f"{name} {_show(s.value)} (from {sampling.source(name)}) not sent: {dialect.label} does not support it"
            )
            continue
        if name in dialect.ranges:
            lo, hi = dialect.ranges[name]
            if not lo <= s.value <= hi:
                if sampling.explicit(name):
                    raise UsageError(
                        f"{flag} {s.value:g} is out of range for {dialect.label}; nothing was sent",
                        hint=f"{name} must be in [{lo:g}, {hi:g}] there",
                    )
                clamped = min(max(s.value, lo), hi)
                notes.append(
                    f"{name} {s.value:g} (from {sampling.source(name)}) sent as {clamped:g}: "
                    f"{dialect.label} allows [{lo:g}, {hi:g}]"
                )
                s = Setting(clamped, s.origin)
        if name == "stop" and dialect.max_stop and len(s.value) > dialect.max_stop:
            raise UsageError(
                f"--stop: {dialect.label} takes at most {dialect.max_stop} stop sequences, got {len(s.value)}",
                hint="give fewer --stop values",
            )
        kept[name] = s
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
class _Target:
    model: Setting  # the name sent
    target: Setting  # base URL or None
    dialect: Dialect
    profile_sampling: dict[str, Any]
    model_profile: Any = None
    provider: Any = None  # ProviderProfile


def _locate(flags: TryFlags, ws: Any, workspace: Any, catalog: Any) -> _Target:
    """Which model, at which URL, speaking which dialect."""
    target_s = pick(flags.target, env=ENV_PREFIX + "TARGET", workspace=ws.target)
    target = target_s.value
    _check_url(target)
    provider_name = pick(flags.provider, env=ENV_PREFIX + "PROVIDER", workspace=ws.provider).value
    provider = catalog.provider(provider_name).profile if provider_name else None
    model_s = pick(flags.model_ref, env=ENV_PREFIX + "MODEL", workspace=ws.model)
    if model_s.value is None and not (target or provider):
        model_s = Setting(workspace.default_model(), "workspace" if workspace.model else "default")
    ref = model_s.value

    if provider is not None:
        if not ref:
            example = provider.models[0].name if provider.models else "MODEL"
            raise UsageError(f"which {provider.name} model?", hint=f'name one: llmops try {example} "..."')
        url = target or provider.base_url
        if not url:
            raise UsageError(f"provider '{provider.name}' has no base_url", hint="pass --target URL")
        url_s = target_s if target else Setting(url, "profile")
        return _Target(model_s, url_s, dialect_for_provider(provider.api), {}, provider=provider)

    loaded = None
    if ref:
        try:
            loaded = catalog.model(ref)
        except NotFoundError as missing:
            owner = _provider_of(ref, catalog)
            if owner is not None:
                url_s = target_s if target else Setting(owner.base_url, "profile")
                return _Target(model_s, url_s, dialect_for_provider(owner.api), {}, provider=owner)
            if not target:
                raise NotFoundError(
                    f"'{ref}' is neither a model profile nor a provider's model",
                    hint=(missing.hint or "")
                    + "; or pass --target URL to send it to a server (a gateway route)",
                ) from None
    if loaded is not None:
        prof = loaded.profile
        sampling = prof.sampling.as_request_fields()
        served = Setting(prof.serving.served_model_name or prof.name, model_s.origin)
        return _Target(served, target_s, dialect_for_engine(prof.engine), sampling, model_profile=loaded)
    return _Target(model_s, target_s, dialect_for_url(target or ""), {})


def _provider_of(model: str, catalog: Any) -> Any:
    for loaded in catalog.all("provider"):
        if loaded.profile.model(model) is not None:
            return loaded.profile
    return None


def _api_key(found: _Target) -> str | None:
    p = found.provider
    if p is not None and p.api_key_env:
        key = os.environ.get(p.api_key_env) or None
        if key is None and p.api in ("openai", "anthropic", "google"):
            raise EnvironmentMissing(
                f"{p.name} needs an API key in ${p.api_key_env}",
                hint=f"export {p.api_key_env}=... (llmops never writes or prints it)",
            )
        return key
    return os.environ.get(API_KEY_ENV) or None


def _prices(provider: Any, model: str) -> Prices | None:
    entry = provider.model(model) if provider is not None else None
    if entry is None:
        return None
    return Prices(entry.input_per_1m, entry.output_per_1m, f"{provider.name} list prices for {model}")


def resolve(flags: TryFlags, workspace: Any, catalog: Any) -> TryPlan:
    """The whole plan, checked: every problem is a UsageError (exit 2) before anything is sent."""
    ws = workspace.try_
    found = _locate(flags, ws, workspace, catalog)
    dialect = found.dialect
    settings: dict[str, Setting] = {}

    preset = pick(flags.preset, env=ENV_PREFIX + "PRESET", workspace=ws.preset)
    if preset.value:
        get_preset(preset.value)  # unknown preset: exit 2 now
    settings["preset"] = preset
    system = pick(flags.system, env=ENV_PREFIX + "SYSTEM", workspace=ws.system)
    settings["system"] = system
    timeout = pick(
        flags.timeout, env=ENV_PREFIX + "TIMEOUT", workspace=ws.timeout, default=DEFAULT_TIMEOUT, cast=float
    )
    if timeout.value is None or timeout.value <= 0:
        raise UsageError(f"--timeout {timeout.value} must be positive", hint="seconds for a whole answer")
    settings["timeout"] = timeout

    base = resolve_sampling(flags.sampling, preset, ws, found.profile_sampling)
    settings.update(base.values)

    preset_n = get_preset(preset.value).n if preset.value else 1
    n = (
        Setting(flags.n, "flag")
        if flags.n is not None
        else Setting(preset_n, preset.origin if preset_n > 1 else "default")
    )
    settings["n"] = n
    repeat = flags.repeat or 1
    if n.value < 1 or repeat < 1:
        raise UsageError("--n and --repeat must be at least 1", hint="e.g. --repeat 3")

    if flags.logprobs is not None:
        if dialect.logprobs is False:
            raise UsageError(
                f"--logprobs: {dialect.label} does not return log-probabilities; nothing was sent",
                hint="drop --logprobs for this endpoint",
            )
        if not 0 <= flags.logprobs <= dialect.max_top_logprobs:
            raise UsageError(
                f"--logprobs {flags.logprobs} is out of range",
                hint=f"ask for 0 to {dialect.max_top_logprobs} alternatives per token",
            )
    settings["logprobs"] = Setting(flags.logprobs, "flag" if flags.logprobs is not None else "default")

    compare_param = None
    if flags.compare:
        compare_param, raw_values = parse_compare(flags.compare)
        variants = []
        for raw in raw_values:
            if compare_param == "preset":
                values = resolve_sampling(flags.sampling, Setting(raw, "flag"), ws, found.profile_sampling)
            else:
                value = parse_value(compare_param, raw, source=f"--compare {compare_param}")
                values = Sampling(
                    {**base.values, compare_param: Setting(value, "flag")},
                    base.preset,
                    base.from_preset - {compare_param},
                )
            v = fit_to_dialect(values, dialect)
            v.label = f"{compare_param}={raw}"
            variants.append(v)
    else:
        v = fit_to_dialect(base, dialect)
        v.label = (
            ", ".join(f"{k}={_show(s.value)}" for k, s in v.values.items() if k != "max_tokens")
            or "server defaults"
        )
        variants = [v]

    messages = ([{"role": "system", "content": system.value}] if system.value else []) + [
        {"role": "user", "content": flags.prompt}
    ]
    if not flags.prompt.strip():
        raise UsageError(
            "the prompt is empty", hint='llmops try MODEL "your prompt" (or - to read it from stdin)'
        )

    node = None
    if found.target.value is None and found.model_profile is not None:
        from llmops.workspace import DEFAULT_NODE

        prof = found.model_profile.profile
        node_name = pick(
            flags.node, workspace=workspace.node, profile=prof.default_node, default=DEFAULT_NODE
        )
        settings["node"] = node_name
        node = catalog.node(node_name.value)
    elif flags.node:
        raise UsageError("--node applies only when llmops serves the model", hint="drop --node with --target")
    settings["target"] = found.target
    settings["model"] = found.model

    target = normalize_target(found.target.value, dialect.endpoint) if found.target.value else None
    return TryPlan(
        model=found.model.value or "",
        target=target,
        dialect=dialect,
        messages=messages,
        variants=variants,
        compare_param=compare_param,
        answers_per_variant=n.value * repeat,
        logprobs=flags.logprobs,
        timeout=float(timeout.value),
        settings=settings,
        api_key=_api_key(found),
        prices=_prices(found.provider, found.model.value or ""),
        model_profile=found.model_profile,
        node_profile=node,
        provider=found.provider.name if found.provider is not None else None,
    )


def _check_url(url: str | None) -> None:
    if url is not None and not url.strip().lower().startswith(("http://", "https://")):
        raise UsageError(
            f"--target '{url}' is not an http(s) URL", hint="e.g. --target http://127.0.0.1:8000/v1"
        )


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "|".join(repr(v) for v in value)
    return str(value)


__all__ = ["DIALECTS", "TryFlags", "TryPlan", "Variant", "resolve"]
