"""The library API: `with running(model, node) as ep:` a ready engine on a port, stopped on exit."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.profiles.schema import ModelProfile, NodeProfile
from llmops.progress import ProgressReporter
from llmops.serve.engines import Launch, get_engine
from llmops.serve.ports import free_port
from llmops.serve.preflight import config_checks, enforce, environment_checks
from llmops.serve.process import EngineProcess
from llmops.serve.settings import ServeSettings, resolve_settings
from llmops.workspace import ServeSection


@dataclass(frozen=True)
class Endpoint:
    """A ready OpenAI-compatible endpoint."""

    base_url: str  # http://HOST:PORT/v1
    model: str  # the served model name clients send
    pid: int
    engine: str
    log_path: Path
    launch: Launch


@dataclass
class Prepared:
    """Settings resolved and the launch built: what --dry-run shows and what start() runs."""

    settings: ServeSettings
    launch: Launch


def prepare(
    model: ModelProfile,
    node: NodeProfile,
    overrides: dict[str, Any] | None = None,
    workspace: ServeSection | None = None,
) -> Prepared:
    settings = resolve_settings(model, node, overrides, workspace)
    launch = get_engine(settings.engine).launch(settings)
    return Prepared(settings, launch)


def default_log_path(engine: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"llmops-{engine}-")) / "engine.log"


@contextmanager
def supervise(
    prepared: Prepared,
    *,
    log_path: Path | None = None,
    ready_timeout: float | None = None,
    force: bool = False,
    progress: ProgressReporter | None = None,
    on_line: Callable[[str], None] | None = None,
    on_start: Callable[[EngineProcess], None] | None = None,
) -> Iterator[tuple[Endpoint, EngineProcess]]:
    """Pre-flight, start, wait ready, yield; on exit (or any error) stop the engine and free the port."""
    s, launch = prepared.settings, prepared.launch
    engine = get_engine(launch.engine)
    enforce(config_checks(s, launch, force=force))
    enforce(environment_checks(s, launch, engine))
    proc = EngineProcess(launch, engine, log_path or default_log_path(launch.engine), on_line=on_line)
    proc.start()
    if on_start is not None:
        on_start(proc)
    try:
        proc.wait_ready(ready_timeout if ready_timeout is not None else float(s["ready_timeout"]), progress)
        yield (
            Endpoint(launch.base_url, launch.served_name, proc.pid, launch.engine, proc.log_path, launch),
            proc,
        )
    finally:
        proc.stop()


@contextmanager
def running(
    model: ModelProfile,
    node: NodeProfile,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    overrides: dict[str, Any] | None = None,
    ready_timeout: float = 120,
    log_path: Path | None = None,
    force: bool = False,
    progress: ProgressReporter | None = None,
) -> Iterator[Endpoint]:
    """Serve `model` on `node` (port None = a free one) until the block ends.

    Raises OperationFailed with the log tail and a diagnosis if the engine dies or is not ready in time.
    """
    settings = {**(overrides or {}), "host": host, "port": port or free_port(host)}
    with supervise(
        prepare(model, node, settings),
        log_path=log_path,
        ready_timeout=ready_timeout,
        force=force,
        progress=progress,
    ) as (endpoint, _proc):
        yield endpoint


def describe(prepared: Prepared, checks: list | None = None, targets: dict | None = None) -> dict[str, Any]:
    """What would run, and why: the --dry-run / --json document (environment variable names, never values)."""
    from llmops.serve.ray import ray_steps

    s, launch = prepared.settings, prepared.launch
    return {
        "model": s.model.name,
        "node": s.node.name,
        **launch.to_json(),
        "command": launch.command_line(),
        "settings": {
            **{k: {"value": v.value, "origin": v.origin} for k, v in (targets or {}).items()},
            **s.origins(),
        },
        "checks": [c.to_json() for c in checks or []],
        "ray_steps": ray_steps(s, launch),
    }


def resolve_targets(
    catalog: Any, workspace: Any, model: str | None, node: str | None
) -> tuple[Any, Any, dict]:
    """Model: argument > workspace > smollm2; node: flag > workspace > model default_node > local-cpu."""
    from llmops.settings import pick
    from llmops.workspace import DEFAULT_MODEL, DEFAULT_NODE

    model_pick = pick(model, workspace=workspace.model, default=DEFAULT_MODEL)
    loaded_model = catalog.model(model_pick.value)
    node_pick = pick(
        node, workspace=workspace.node, profile=loaded_model.profile.default_node, default=DEFAULT_NODE
    )
    loaded_node = catalog.node(node_pick.value)
    return loaded_model.profile, loaded_node.profile, {"model": model_pick, "node": node_pick}
