"""Resolve submit's settings through the one resolver: flags > environment (`LLMOPS_BATCH_*`) > workspace
(llmops.yaml `batch:`) > provider profile > defaults, each remembered with its origin for --dry-run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.batch.backends import API_BACKEND
from llmops.batch.endpoint import split_credentials
from llmops.batch.jobs import SubmitPlan
from llmops.errors import LlmopsError, UsageError
from llmops.output import check_output_file
from llmops.settings import Resolver, Setting, pick

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_RETRIES = 6
DEFAULT_BACKOFF_S = 1.0
DEFAULT_ENDPOINT_WAIT_S = 10.0


def _at_least(kind: Callable[[str], Any], low: float) -> Callable[[str], Any]:
    """An environment parser that also keeps the flag's lower bound."""

    def cast(raw: str) -> Any:
        value = kind(raw)
        if value < low:
            raise ValueError(f"must be at least {low:g}")
        return value

    return cast


def plan_submit(
    input: Path,
    *,
    catalog: Any,
    workspace: Any,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    backoff: float | None = None,
    endpoint_wait: float | None = None,
    max_tokens: int | None = None,
    name: str | None = None,
    output: Path | None = None,
    force: bool = False,
    split: bool = True,
    new: bool = False,
) -> SubmitPlan:
    """Every setting resolved and the output file checked, before the input is read or anything sent."""
    if output is not None:
        check_output_file(output, force=force)
    ws = workspace.batch
    r = Resolver(section="batch", workspace=ws)
    provider_name = _provider(r, provider, workspace)
    profile = catalog.provider(provider_name).profile
    backend = API_BACKEND[profile.api]
    if not profile.batch.supported:
        raise UsageError(
            f"provider '{profile.name}' does not support batch jobs", hint="choose another --provider"
        )
    sampling = _model(r, model, catalog, workspace, profile, local=backend == "local")
    raw_url = r.take("base_url", base_url, profile=profile.base_url)
    bare_url, credentials = split_credentials(raw_url)
    r.set("base_url", bare_url, r.resolved.origin("base_url") or "default")  # type: ignore[arg-type]
    if backend == "local" and not bare_url:
        raise UsageError(
            f"no base URL for provider '{profile.name}'",
            hint="pass --base-url http://HOST:PORT/v1 or set base_url in the provider profile",
        )
    if credentials and backend == "local" and profile.api_key_env:
        raise UsageError(
            f"the base URL has credentials and provider '{profile.name}' names an API key "
            f"(${profile.api_key_env}); both would go in the Authorization header",
            hint="use one of them: drop user:pass@ from the URL, or use a provider without api_key_env",
        )
    r.take("concurrency", concurrency, default=DEFAULT_CONCURRENCY, cast=_at_least(int, 1))
    r.take("timeout", timeout, default=DEFAULT_TIMEOUT_S, cast=_at_least(float, 0.1))
    r.take("max_retries", max_retries, default=DEFAULT_MAX_RETRIES, cast=_at_least(int, 0))
    r.take("backoff", backoff, default=DEFAULT_BACKOFF_S, cast=_at_least(float, 0))
    r.take("endpoint_wait", endpoint_wait, default=DEFAULT_ENDPOINT_WAIT_S, cast=_at_least(float, 0))
    limits = profile.model(r.resolved.value("model")) if r.resolved.value("model") else None
    r.take("rpm", None, env=False, profile=(limits.rpm if limits and limits.rpm else profile.rpm))
    r.take("tpm", None, env=False, profile=(limits.tpm if limits and limits.tpm else profile.tpm))
    return SubmitPlan(
        input=input,
        provider=profile,
        backend=backend,
        settings=r.resolved,
        sampling=sampling,
        max_tokens=max_tokens,
        name=name,
        output=output,
        force=force,
        split=split,
        new=new,
        credentials=credentials,
    )


def _provider(r: Resolver, flag: str | None, workspace: Any) -> str:
    """--provider > $LLMOPS_BATCH_PROVIDER > $LLMOPS_PROVIDER > batch.provider > provider > local."""
    s = pick(flag, env="LLMOPS_BATCH_PROVIDER")
    if s.value is None:
        s = pick(env="LLMOPS_PROVIDER", workspace=workspace.batch.provider or workspace.provider)
    if s.value is None:
        s = Setting("local", "default")
    return r.set("provider", s.value, s.origin)


def _model(
    r: Resolver, flag: str | None, catalog: Any, workspace: Any, profile: Any, *, local: bool
) -> dict[str, Any]:
    """The model: --model > $LLMOPS_BATCH_MODEL > batch.model; for the local backend then $LLMOPS_MODEL >
    the workspace's model > the provider's first model, a model profile's name becoming its served name.
    Returns that profile's sampling defaults (local only)."""
    s = pick(flag, env="LLMOPS_BATCH_MODEL", workspace=workspace.batch.model)
    if local and s.value is None:
        first = profile.models[0].name if profile.models else None
        s = pick(env="LLMOPS_MODEL", workspace=workspace.model, profile=first)
    sampling: dict[str, Any] = {}
    if local and s.value is not None:
        try:
            model_profile = catalog.model(s.value).profile
        except LlmopsError:
            model_profile = None
        if model_profile is not None:
            s = Setting(model_profile.serving.served_model_name or model_profile.name, s.origin)
            sampling = model_profile.sampling.as_request_fields()
    r.set("model", s.value, s.origin)
    return sampling
