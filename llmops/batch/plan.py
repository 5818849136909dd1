"""Resolve submit's settings by explicit precedence: flags > workspace (llmops.yaml) > profile > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.batch.backends import API_BACKEND
from llmops.batch.jobs import SubmitPlan
from llmops.errors import LlmopsError, UsageError
from llmops.settings import Setting, pick

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_RETRIES = 6
DEFAULT_BACKOFF_S = 1.0


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
    max_tokens: int | None = None,
    name: str | None = None,
    output: Path | None = None,
    split: bool = True,
    new: bool = False,
) -> SubmitPlan:
    ws = workspace.batch
    provider_s = pick(provider, workspace=ws.provider or workspace.provider, default="local")
    loaded = catalog.provider(provider_s.value)
    profile = loaded.profile
    backend = API_BACKEND[profile.api]
    if not profile.batch.supported:
        raise UsageError(
            f"provider '{profile.name}' does not support batch jobs", hint="choose another --provider"
        )
    model_s = pick(model, workspace=ws.model, default=None)
    sampling: dict[str, Any] = {}
    if backend == "local":
        if model_s.value is None:
            model_s = pick(
                None, workspace=workspace.model, profile=profile.models[0].name if profile.models else None
            )
        model_s, sampling = _local_model(catalog, model_s)
    base_url_s = pick(base_url, workspace=ws.base_url, profile=profile.base_url)
    if backend == "local" and not base_url_s.value:
        raise UsageError(
            f"no base URL for provider '{profile.name}'",
            hint="pass --base-url http://HOST:PORT/v1 or set base_url in the provider profile",
        )
    limits_model = profile.model(model_s.value) if model_s.value else None
    settings: dict[str, Setting] = {
        "provider": provider_s,
        "model": model_s,
        "base_url": base_url_s,
        "concurrency": pick(concurrency, workspace=ws.concurrency, default=DEFAULT_CONCURRENCY),
        "timeout": pick(timeout, default=DEFAULT_TIMEOUT_S),
        "max_retries": pick(max_retries, default=DEFAULT_MAX_RETRIES),
        "backoff": pick(backoff, default=DEFAULT_BACKOFF_S),
        "rpm": pick(None, profile=(limits_model.rpm if limits_model and limits_model.rpm else profile.rpm)),
        "tpm": pick(None, profile=(limits_model.tpm if limits_model and limits_model.tpm else profile.tpm)),
    }
    return SubmitPlan(
        input=input,
        provider=profile,
        backend=backend,
        settings=settings,
        sampling=sampling,
        max_tokens=max_tokens,
        name=name,
        output=output,
        split=split,
        new=new,
    )


def _local_model(catalog: Any, model_s: Setting) -> tuple[Setting, dict[str, Any]]:
    """A model profile's served name and sampling defaults when the name is one; else the name as given."""
    if model_s.value is None:
        return model_s, {}
    try:
        profile = catalog.model(model_s.value).profile
    except LlmopsError:
        return model_s, {}
    served = profile.serving.served_model_name or profile.name
    return Setting(served, model_s.origin), profile.sampling.as_request_fields()
