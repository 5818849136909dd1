"""Resolve a bench's settings with the one resolver: flags > $LLMOPS_BENCH_* > llmops.yaml (bench:) > model
profile > defaults; and check every gate before the run."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmops.bench.endpoints import normalize_target
from llmops.bench.result import BenchConfig, baseline_figures
from llmops.bench.run import Prices
from llmops.bench.slo import check_slo_limit, parse_slo
from llmops.errors import EnvironmentMissing, UsageError
from llmops.settings import Resolved, Resolver, resolve_model_node

DEFAULT_SWEEP_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


@dataclass(kw_only=True)
class BenchFlags:
    """The command line as given (None = not set); built with keywords only."""

    model_ref: str | None = None
    target: str | None = None
    model: str | None = None
    endpoint: str | None = None
    dataset: str | None = None
    input_len: int | None = None
    output_len: int | None = None
    prefix_len: int | None = None
    num_prompts: int | None = None
    duration: float | None = None
    request_rate: str | None = None
    burstiness: float | None = None
    max_concurrency: int | None = None
    sweep: bool = False
    sweep_values: str | None = None
    warmup: int | None = None
    seed: int | None = None
    slos: list[str] = field(default_factory=list)
    baseline: Path | None = None
    max_regression: float | None = None
    timeout: float | None = None
    ignore_eos: bool | None = None
    provider: str | None = None
    node: str | None = None


@dataclass
class BenchSettings:
    """A resolved bench: the run's config, every setting with its origin, and what the run needs."""

    config: BenchConfig
    settings: Resolved
    model_profile: Any = None  # Loaded[ModelProfile] when a profile is involved
    node_profile: Any = None
    api_key: str | None = None
    prices: Prices | None = None
    baseline: dict[str, float] | None = None  # the baseline's figures, checked before the run
    needs_server: bool = False  # no target: serve the model profile first
    notes: list[str] = field(default_factory=list)  # profile sampling values dropped or adjusted, and why


def parse_rate(text: str | float | None) -> float | str:
    if text is None:
        return "inf"
    if isinstance(text, int | float):
        value = float(text)
    elif str(text).strip().lower() in ("inf", "infinity"):
        return "inf"
    else:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(
                f"--request-rate '{text}' is not a number", hint="give requests per second or inf"
            ) from None
    if math.isinf(value):
        return "inf"
    if value <= 0:
        raise UsageError(f"--request-rate {value:g} must be positive", hint="give requests per second or inf")
    return value


def _sweep(flags: BenchFlags, rate: float | str, cap: int | None) -> tuple[list[float] | None, str | None]:
    if not flags.sweep and not flags.sweep_values:
        return None, None
    of = "rate" if rate != "inf" else "concurrency"
    if flags.sweep_values:
        try:
            values = [float(v) for v in flags.sweep_values.split(",") if v.strip()]
        except ValueError:
            raise UsageError(
                f"--sweep-values '{flags.sweep_values}' is not a list of numbers",
                hint="e.g. --sweep-values 1,4,16,64",
            ) from None
        if not values or any(v <= 0 for v in values):
            raise UsageError("--sweep-values must be positive numbers", hint="e.g. --sweep-values 1,4,16,64")
        return values, of
    if of == "rate":
        r = float(rate)
        return [r / 8, r / 4, r / 2, r], of
    top = cap or 64
    return [float(c) for c in DEFAULT_SWEEP_CONCURRENCY if c <= top] or [float(top)], of


def resolve(flags: BenchFlags, workspace: Any, catalog: Any) -> BenchSettings:
    """Every setting with its origin (flags > $LLMOPS_BENCH_* > llmops.yaml > profile > defaults), and every
    gate checked: nothing here can fail after a run that took minutes."""
    r = Resolver("bench", workspace.bench)
    target = r.take("target", flags.target)
    endpoint = r.take("endpoint", flags.endpoint, default="chat")
    if endpoint not in ("chat", "completions", "anthropic"):
        raise UsageError(f"unknown endpoint '{endpoint}'", hint="use chat, completions or anthropic")
    if target is not None:
        target = check_target(target, r.resolved.origin("target") or "flag")
        if flags.node:
            raise UsageError(
                "--node picks where llmops serves the model, and with a target nothing is served "
                f"(the target came from {_where(r.resolved.origin('target'))})",
                hint="drop --node to bench the target, or drop the target to serve the model on that node",
            )
    needs_server = target is None
    loaded = node = None
    if needs_server:
        if endpoint == "anthropic":
            raise UsageError(
                "the anthropic endpoint needs a target", hint="pass --target https://api.anthropic.com"
            )
        serve = Resolver()
        loaded, node = resolve_model_node(catalog, workspace, flags.model_ref, flags.node, resolver=serve)
        r.set("model_profile", loaded.profile.name, serve.resolved.origin("model") or "default")
        r.set("node", node.profile.name, serve.resolved.origin("node") or "default")
    elif flags.model_ref:
        loaded = catalog.model(flags.model_ref)
        r.set("model_profile", loaded.profile.name, "flag")
    profile = loaded.profile if loaded else None

    anthropic = endpoint == "anthropic"
    provider_name = r.take(
        "provider",
        flags.provider,
        workspace=None if anthropic else workspace.provider,
        default="anthropic" if anthropic else None,
        env=False if anthropic else "LLMOPS_PROVIDER",
    )
    provider = catalog.provider(provider_name).profile if provider_name else None
    api_key = None
    if provider is not None and provider.api_key_env and provider.api in ("anthropic", "openai") and target:
        api_key = os.environ.get(provider.api_key_env) or None
        if api_key is None and anthropic:
            raise EnvironmentMissing(
                f"the anthropic endpoint needs an API key in ${provider.api_key_env}",
                hint=f"export {provider.api_key_env}=... (the key is never written anywhere)",
            )

    served = profile.serving.served_model_name if profile else None
    model = r.take("model", flags.model, profile=served or (profile.name if profile else None))
    sampling = profile.sampling.as_request_fields() if profile else {}
    profile_max = sampling.pop("max_tokens", None)
    sampling, sampling_notes = _fit_sampling(sampling, provider, profile)
    output_len = r.take("output_len", flags.output_len, profile=profile_max)
    dataset = r.take("dataset", flags.dataset, default="random")
    if dataset == "random" and output_len is None:
        output_len = r.set("output_len", 128, "default")
    rate = parse_rate(r.take("request_rate", flags.request_rate))
    r.set("request_rate", rate, r.resolved.origin("request_rate") or "default")
    cap = r.take("max_concurrency", flags.max_concurrency)
    sweep, sweep_of = _sweep(flags, rate, cap)
    slos = _slos(r, flags.slos)
    baseline_path = r.take("baseline", str(flags.baseline) if flags.baseline else None)
    baseline = baseline_figures(Path(baseline_path).expanduser()) if baseline_path else None
    max_reg = r.take("max_regression", flags.max_regression, default=10.0 if baseline_path else None)
    if max_reg is not None and not (math.isfinite(max_reg) and max_reg >= 0):
        raise UsageError(f"--max-regression {max_reg:g} must be a percentage of 0 or more", hint="e.g. 10")

    is_api = anthropic or (provider is not None and provider.api == "openai")
    config = BenchConfig(
        target=normalize_target(target, endpoint) if target else "http://127.0.0.1:0/v1",
        model=model or "",
        endpoint=endpoint,
        dataset=dataset,
        input_len=r.take("input_len", flags.input_len, default=128),
        output_len=output_len,
        prefix_len=r.take("prefix_len", flags.prefix_len, default=0),
        num_prompts=r.take("num_prompts", flags.num_prompts, default=100),
        duration=r.take("duration", flags.duration),
        request_rate=rate,
        burstiness=r.take("burstiness", flags.burstiness, default=1.0),
        max_concurrency=cap,
        sweep=sweep,
        sweep_of=sweep_of,
        warmup=r.take("warmup", flags.warmup, default=1),
        seed=r.take("seed", flags.seed, default=0),
        timeout_s=r.take("timeout_s", flags.timeout, default=300.0, cast=float),
        ignore_eos=r.take("ignore_eos", flags.ignore_eos, default=not is_api, cast=_as_bool),
        sampling=sampling,
        slos=slos,
        baseline=baseline_path,
        max_regression=max_reg,
        provider=provider.name if provider else None,
        model_profile=profile.name if profile else None,
        served_by_llmops=needs_server,
        origins={k: s.origin for k, s in r.resolved.items()},
    )
    _check_numbers(config)
    return BenchSettings(
        config=config,
        settings=r.resolved,
        model_profile=loaded,
        node_profile=node,
        api_key=api_key,
        prices=_prices(provider, model),
        baseline=baseline,
        needs_server=needs_server,
        notes=sampling_notes,
    )


def _fit_sampling(sampling: dict[str, Any], provider: Any, profile: Any) -> tuple[dict[str, Any], list[str]]:
    """A profile's sampling defaults as the endpoint takes them (llmops.sampling's rules, as `try` applies
    them): under its field names (llama.cpp: repeat_penalty), clamped into its ranges, and without what it
    does not support; each change comes back as a note."""
    if not sampling:
        return sampling, []
    from llmops.sampling.dialects import dialect_for_engine, dialect_for_provider, fit_value, wire_fields

    dialect = dialect_for_provider(provider.api) if provider else dialect_for_engine(profile.engine)
    kept: dict[str, Any] = {}
    notes: list[str] = []
    for name, value in sampling.items():
        value, note = fit_value(dialect, name, value, explicit=False, source=f"model profile {profile.name}")
        if note:
            notes.append(note)
        if value is not None:
            kept[name] = value
    return wire_fields(dialect, kept), notes


def _as_bool(text: str) -> bool:
    from pydantic import TypeAdapter

    return TypeAdapter(bool).validate_python(text)


def _where(origin: str | None) -> str:
    return {
        "flag": "--target",
        "env": "$LLMOPS_BENCH_TARGET",
        "workspace": "llmops.yaml (bench: target)",
    }.get(origin or "", "--target")


def check_target(url: str, origin: str = "flag") -> str:
    """An http(s) URL with a host (and a valid port), or exit 2 saying how to write one."""
    text = url.strip()
    u = urlsplit(text)
    try:
        port_ok = u.port is None or 0 < u.port < 65536
    except ValueError:
        port_ok = False
    if u.scheme in ("http", "https") and u.hostname and port_ok:
        return text
    if "://" not in text:
        hint = f"add the scheme: http://{text}"
    elif u.scheme not in ("http", "https"):
        hint = "bench speaks HTTP: use http://HOST:PORT/v1 or https://HOST"
    else:
        hint = "write it like http://127.0.0.1:8000/v1"
    raise UsageError(
        f"target '{url}' (from {_where(origin)}) is not an http(s) URL with a host and port", hint=hint
    )


def _slos(r: Resolver, flag_slos: list[str]) -> dict[str, float]:
    """SLO gates: $LLMOPS_BENCH_SLOS (JSON) or llmops.yaml, then each --slo NAME=VALUE on top; all checked."""
    workspace_slos = getattr(r.workspace, "slos", None) or None  # an absent `slos:` is {} in the model
    slos = dict(r.take("slos", None, workspace=workspace_slos, default={}))
    for name, limit in slos.items():
        check_slo_limit(name, limit)
    for text in flag_slos:
        name, limit = parse_slo(text)
        slos[name] = limit
    if flag_slos:
        r.set("slos", slos, "flag")
    else:
        r.set("slos", slos, r.resolved.origin("slos") or "default")
    return slos


def _check_numbers(config: BenchConfig) -> None:
    """Values the flags bound by type but the environment and llmops.yaml can still get wrong."""
    if config.burstiness <= 0 or not math.isfinite(config.burstiness):
        raise UsageError(
            f"--burstiness {config.burstiness:g} must be positive", hint="1 is a Poisson process"
        )
    if config.duration is not None and not (config.duration > 0 and math.isfinite(config.duration)):
        raise UsageError(f"--duration {config.duration:g} must be a positive number of seconds")
    if not (config.timeout_s > 0 and math.isfinite(config.timeout_s)):
        raise UsageError(f"--timeout {config.timeout_s:g} must be a positive number of seconds")
    if config.warmup < 0 or config.prefix_len < 0:
        raise UsageError("--warmup and --prefix-len must be 0 or more")


def _prices(provider: Any, model: str | None) -> Prices | None:
    if provider is None or not model:
        return None
    entry = provider.model(model)
    if entry is None:
        return None
    return Prices(
        entry.input_per_1m,
        entry.output_per_1m,
        f"{provider.name} list prices for {model}: ${entry.input_per_1m:g} in / ${entry.output_per_1m:g} "
        "out per 1M tokens",
    )


def discover_model(base_url: str, timeout: float = 10.0) -> str:
    """The first model a target serves (GET /models), for when neither --model nor the workspace says."""
    import httpx

    try:
        r = httpx.get(base_url.rstrip("/") + "/models", timeout=timeout)
        r.raise_for_status()
        return str(r.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UsageError(
            f"cannot tell which model {base_url} serves ({type(exc).__name__}: {exc})",
            hint="pass --model NAME",
        ) from exc
