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
) -> Iterator[tuple[Endpoint, EngineProcess]]:
    """Pre-flight, start, wait ready, yield; on exit (or any error) stop the engine and free the port."""
    s, launch = prepared.settings, prepared.launch
    engine = get_engine(launch.engine)
    enforce(config_checks(s, launch, force=force))
    enforce(environment_checks(s, launch, engine))
    proc = EngineProcess(launch, engine, log_path or default_log_path(launch.engine), on_line=on_line)
    proc.start()
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
