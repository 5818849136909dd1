"""The library API: `with running(model, node) as ep:` a ready engine on a port, stopped on exit."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llmops.errors import OperationFailed
from llmops.profiles.schema import ModelProfile, NodeProfile
from llmops.progress import ProgressReporter
from llmops.serve.death import EngineDied
from llmops.serve.engines import Launch, check_supported, get_engine
from llmops.serve.multinode import PeerWatch, host_commands, missing_followers, network_env, wait_for_head
from llmops.serve.ports import free_port
from llmops.serve.preflight import Check, config_checks, enforce, environment_checks
from llmops.serve.process import EngineProcess
from llmops.serve.settings import ServeSettings, resolve_settings
from llmops.settings import Resolver, dry_run_document, resolve_model_node


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
    workspace: Any = None,
    *,
    resolver: Resolver | None = None,
    env: bool = True,
) -> Prepared:
    """Resolve the settings (flags in `overrides`), build the launch, refuse settings the engine ignores."""
    settings = resolve_settings(model, node, overrides, workspace, resolver=resolver, env=env)
    engine = get_engine(settings.engine)
    launch = engine.launch(settings)
    check_supported(engine, settings.resolved)
    return Prepared(settings, launch)


def prepare_for(catalog: Any, workspace: Any, model: str | None, node: str | None, flags: dict) -> Prepared:
    """What `llmops serve` runs: the model and node by name (resolve_model_node), then `prepare`."""
    resolver = Resolver("serve", workspace.serve)
    loaded_model, loaded_node = resolve_model_node(catalog, workspace, model, node, resolver=resolver)
    return prepare(loaded_model.profile, loaded_node.profile, flags, resolver=resolver)


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
    on_note: Callable[[str], None] | None = None,
    interrupt_on_death: bool = False,
) -> Iterator[tuple[Endpoint, EngineProcess]]:
    """Pre-flight, start, wait ready, yield; on exit (or any error) stop the engine and free the port.

    An engine that ends by itself is a death: leaving the block raises its report (OperationFailed),
    whatever the block raised on the way (a client's connection error names no crash). With
    `interrupt_on_death` (command-line clients, main thread only) the death also interrupts the main
    thread within a second, busy or idle, by raising EngineDied there.
    """
    s, launch = prepared.settings, prepared.launch
    engine = get_engine(launch.engine)
    enforce(config_checks(s, launch, force=force))
    timeout = ready_timeout if ready_timeout is not None else float(s["ready_timeout_s"])
    if launch.headless:  # a multi-node follower: first of all, the head must be reachable (said in seconds)
        wait_for_head(s["master_addr"], s["master_port"], timeout)
    enforce(environment_checks(s, launch, engine))
    if (prepare_files := getattr(engine, "prepare_files", None)) is not None:
        prepare_files(s, progress)  # e.g. the 16-bit checkpoint vLLM loads, made once from a GGUF
    if (before_start := getattr(engine, "before_start", None)) is not None:
        launch = before_start(launch, on_note or _log_note)
    if net := network_env(s, dict(os.environ)):
        launch = replace(launch, env={**launch.env, **net})
    proc = EngineProcess(launch, engine, log_path or default_log_path(launch.engine), on_line=on_line)
    proc.start()
    if on_start is not None:
        on_start(proc)
    peers: PeerWatch | None = None
    try:
        head = s.nnodes > 1 and not launch.headless
        proc.wait_ready(timeout, progress, waiting_on=(lambda: missing_followers(s)) if head else None)
        peers = _watch_peers(s, proc) if s.nnodes > 1 else None
        with _interrupting(proc, interrupt_on_death):
            yield (
                Endpoint(launch.base_url, launch.served_name, proc.pid, launch.engine, proc.log_path, launch),
                proc,
            )
    except EngineDied:
        pass  # the report is raised below
    finally:
        proc.stop()
        if peers is not None and peers.lost:
            raise OperationFailed(peers.lost, hint=f"engine log: {proc.log_path}") from None
        # A death during start-up is wait_ready's to report (it knows about ports and timeouts).
        if proc.ready and (death := proc.death()) is not None:
            raise death.error() from None


def _watch_peers(s: ServeSettings, proc: EngineProcess, interval: float = 1.0) -> PeerWatch:
    """A thread that stops the engine when another host of a multi-node engine is lost (PeerWatch)."""
    import threading

    watch = PeerWatch(s)

    def run() -> None:
        while proc.exited() is None:
            if watch.poll() is not None:
                proc.stop()
                return
            time.sleep(interval)

    threading.Thread(target=run, daemon=True, name="peer-watch").start()
    return watch


def _log_note(message: str) -> None:
    import logging

    logging.getLogger("llmops.serve").warning(message)


@contextmanager
def _interrupting(proc: EngineProcess, enabled: bool) -> Iterator[None]:
    """While the block runs, an engine death raises EngineDied in the main thread (signal-interrupted
    waits included, so a blocking read on the dead engine ends at once)."""
    import signal
    import threading

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    main = threading.main_thread().ident
    armed = threading.Event()
    armed.set()

    def handler(_signum: int, _frame: object) -> None:
        if armed.is_set():
            armed.clear()
            raise EngineDied()

    previous = signal.signal(signal.SIGUSR2, handler)
    proc.on_death = lambda _death: (
        armed.is_set() and main is not None and signal.pthread_kill(main, signal.SIGUSR2)
    )
    try:
        yield
    finally:
        armed.clear()
        proc.on_death = None
        signal.signal(signal.SIGUSR2, previous)


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
    on_note: Callable[[str], None] | None = None,
    interrupt_on_death: bool = False,
) -> Iterator[Endpoint]:
    """Serve `model` on `node` (port None = a free one) until the block ends.

    Raises OperationFailed with the log tail and a diagnosis if the engine dies (the death's report:
    signal, phase, last log lines) or is not ready in time.
    """
    settings = {**(overrides or {}), "host": host, "port": port or free_port(host)}
    with supervise(
        prepare(model, node, settings, env=False),
        log_path=log_path,
        ready_timeout=ready_timeout,
        force=force,
        progress=progress,
        on_note=on_note,
        interrupt_on_death=interrupt_on_death,
    ) as (endpoint, _proc):
        yield endpoint


def dry_run(prepared: Prepared, *, force: bool) -> dict[str, Any]:
    """The --dry-run document: every setting with its origin, then the launch and the pre-flight checks
    (environment variable names, never values)."""
    from llmops.serve.ray import ray_steps

    checks: list[Check] = config_checks(prepared.settings, prepared.launch, force=force)
    enforce(checks)
    launch = prepared.launch
    return dry_run_document(
        "serve",
        prepared.settings.resolved,
        **launch.to_json(),
        command_line=launch.command_line(),
        exec_command_line=launch.exec_command_line(),
        checks=[c.to_json() for c in checks],
        ray_steps=ray_steps(prepared.settings, launch),
        hosts=[h.to_json() for h in host_commands(prepared.settings)],
    )
