"""Resolve a bench's settings: flags > workspace (llmops.yaml bench:) > model profile > defaults."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.bench.endpoints import normalize_target
from llmops.bench.result import BenchConfig
from llmops.bench.run import Prices
from llmops.bench.slo import parse_slo, slo_key
from llmops.errors import EnvironmentMissing, UsageError
from llmops.settings import pick

DEFAULT_SWEEP_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class BenchFlags:
    """The command line as given (None = not set)."""

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
class Resolved:
    config: BenchConfig
    model_profile: Any = None  # Loaded[ModelProfile] when a profile is involved
    node_profile: Any = None
    api_key: str | None = None
    prices: Prices | None = None
    needs_server: bool = False  # no target: serve the model profile first


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


def resolve(flags: BenchFlags, workspace: Any, catalog: Any) -> Resolved:
    """Every setting with its origin; raises UsageError/EnvironmentMissing with the fix."""
    ws = workspace.bench
    origins: dict[str, str] = {}

    def take(name: str, flag: Any, ws_value: Any = None, profile: Any = None, default: Any = None) -> Any:
        s = pick(flag, workspace=ws_value, profile=profile, default=default)
        origins[name] = s.origin
        return s.value

    target = take("target", flags.target, ws.target)
    endpoint = take("endpoint", flags.endpoint, ws.endpoint, default="chat")
    if endpoint not in ("chat", "completions", "anthropic"):
        raise UsageError(f"unknown endpoint '{endpoint}'", hint="use chat, completions or anthropic")
    model_ref = flags.model_ref or (None if target else workspace.default_model())
    loaded = catalog.model(model_ref) if model_ref else None
    profile = loaded.profile if loaded else None
    needs_server = target is None
    if needs_server and endpoint == "anthropic":
        raise UsageError(
            "the anthropic endpoint needs a target", hint="pass --target https://api.anthropic.com"
        )

    provider_name = flags.provider or ("anthropic" if endpoint == "anthropic" else workspace.provider)
    provider = catalog.provider(provider_name).profile if provider_name else None
    api_key = None
    if provider is not None and provider.api_key_env and provider.api in ("anthropic", "openai") and target:
        api_key = os.environ.get(provider.api_key_env) or None
        if api_key is None and endpoint == "anthropic":
            raise EnvironmentMissing(
                f"the anthropic endpoint needs an API key in ${provider.api_key_env}",
                hint=f"export {provider.api_key_env}=... (the key is never written anywhere)",
            )

    served = profile.serving.served_model_name if profile else None
    model = take("model", flags.model, ws.model, served or (profile.name if profile else None))
    sampling = profile.sampling.as_request_fields() if profile else {}
    profile_max = sampling.pop("max_tokens", None)
    output_len = take("output_len", flags.output_len, ws.output_len, profile_max)
    dataset = take("dataset", flags.dataset, ws.dataset, default="random")
    if dataset == "random" and output_len is None:
        output_len, origins["output_len"] = 128, "default"
    rate = parse_rate(take("request_rate", flags.request_rate, ws.request_rate))
    cap = take("max_concurrency", flags.max_concurrency, ws.max_concurrency)
    sweep, sweep_of = _sweep(flags, rate, cap)

    slos = dict(ws.slos)
    for name in slos:
        slo_key(name)
    origins["slos"] = "workspace" if slos else "default"
    for text in flags.slos:
        name, limit = parse_slo(text)
        slos[name] = limit
        origins["slos"] = "flag"
    baseline = take("baseline", str(flags.baseline) if flags.baseline else None, ws.baseline)
    max_reg = take(
        "max_regression", flags.max_regression, ws.max_regression, default=10.0 if baseline else None
    )

    is_api = endpoint == "anthropic" or (provider is not None and provider.api == "openai")
    config = BenchConfig(
        target=normalize_target(target, endpoint) if target else "http://127.0.0.1:0/v1",
        model=model or "",
        endpoint=endpoint,
        dataset=dataset,
        input_len=take("input_len", flags.input_len, ws.input_len, default=128),
        output_len=output_len,
        prefix_len=take("prefix_len", flags.prefix_len, ws.prefix_len, default=0),
        num_prompts=take("num_prompts", flags.num_prompts, ws.num_prompts, default=100),
        duration=take("duration", flags.duration, ws.duration),
        request_rate=rate,
        burstiness=take("burstiness", flags.burstiness, ws.burstiness, default=1.0),
        max_concurrency=cap,
        sweep=sweep,
        sweep_of=sweep_of,
        warmup=take("warmup", flags.warmup, ws.warmup, default=1),
        seed=take("seed", flags.seed, ws.seed, default=0),
        timeout_s=take("timeout_s", flags.timeout, None, default=300.0),
        ignore_eos=take("ignore_eos", flags.ignore_eos, None, default=not is_api),
        sampling=sampling,
        slos=slos,
        baseline=baseline,
        max_regression=max_reg,
        provider=provider.name if provider else None,
        model_profile=profile.name if profile else None,
        served_by_llmops=needs_server,
        origins=origins,
    )
    if config.burstiness <= 0:
        raise UsageError(
            f"--burstiness {config.burstiness:g} must be positive", hint="1 is a Poisson process"
        )
    node = None
    if needs_server and profile is not None:
        from llmops.workspace import DEFAULT_NODE

        node = catalog.node(take("node", flags.node, workspace.node, profile.default_node, DEFAULT_NODE))
    return Resolved(
        config=config,
        model_profile=loaded,
        node_profile=node,
        api_key=api_key,
        prices=_prices(provider, model),
        needs_server=needs_server,
    )


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
