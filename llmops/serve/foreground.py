"""Serve in the foreground until Ctrl-C or SIGTERM; an engine that ends by itself raises its death's report."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.progress import ProgressReporter
from llmops.serve.api import Endpoint, Prepared, supervise
from llmops.serve.process import EngineProcess


class _Stop(BaseException):
    """Raised from a signal handler in the main thread: leave the serve loop wherever it is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Outcome:
    """A serve that llmops stopped (an engine's own end raises OperationFailed instead)."""

    exit_code: int  # the engine's status as a shell sees it (128 + signal when killed by one)
    stopped_by: str | None  # "SIGINT" / "SIGTERM"
    log_path: Path | None


def shell_status(returncode: int | None) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


def serve_foreground(
    prepared: Prepared,
    *,
    force: bool = False,
    ready_timeout: float | None = None,
    log_path: Path | None = None,
    progress: ProgressReporter | None = None,
    on_line: Callable[[str], None] | None = None,
    on_ready: Callable[[Endpoint], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Outcome:
    """Start with pre-flight, report readiness, then wait; any exit stops the engine's process group.

    Raises OperationFailed when the engine ends without llmops stopping it (the death's report), even
    when a signal to llmops arrives after the engine died.
    """

    def handler(signum: int, _frame: object) -> None:
        # A second signal while stopping must not interrupt the clean stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    started: list[EngineProcess] = []
    stopped_by: str | None = None
    try:
        with supervise(
            prepared,
            log_path=log_path,
            ready_timeout=ready_timeout,
            force=force,
            progress=progress,
            on_line=on_line,
            on_start=started.append,
            on_note=on_note,
        ) as (endpoint, proc):
            if on_ready is not None:
                on_ready(endpoint)
            while proc.exited() is None:
                time.sleep(0.2)
    except _Stop as stop:
        stopped_by = signal.Signals(stop.signum).name
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if not started or started[0].proc is None:  # stopped before the engine started
        return Outcome(130, stopped_by, None)
    proc = started[0]
    return Outcome(shell_status(proc.proc.returncode), stopped_by, proc.log_path)
