"""One engine process: start it in its own process group, wait until it serves, stop it cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from llmops.errors import OperationFailed
from llmops.progress import NullProgress, ProgressReporter
from llmops.serve.engines.base import Engine, FailurePattern, Launch
from llmops.serve.ports import wait_port_free

STOP_GRACE_S = 15.0
TAIL_LINES = 20


def diagnose(log_text: str, patterns: tuple[FailurePattern, ...]) -> str | None:
    """The first known failure the log shows, in words that name the fix."""
    return next((p.diagnosis for p in patterns if p.search(log_text)), None)


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class EngineProcess:
    """A supervised engine subprocess; its output goes to a log file (streamed to `on_line` when given)."""

    def __init__(
        self, launch: Launch, engine: Engine, log_path: Path, on_line: Callable[[str], None] | None = None
    ) -> None:
        self.launch = launch
        self.engine = engine
        self.log_path = log_path
        self.on_line = on_line
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop_tail = threading.Event()
        self._tail_thread: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.launch.env}
        with self.log_path.open("wb") as log:
            try:
                self.proc = subprocess.Popen(
                    self.launch.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise OperationFailed(
                    f"cannot start {self.launch.engine}: {exc.filename} not found",
                    hint=f"install it with: pip install 'llmops[{self.engine.extra}]'",
                ) from exc
        if self.on_line is not None:
            self._tail_thread = threading.Thread(target=self._follow, daemon=True)
            self._tail_thread.start()

    def _follow(self) -> None:
        """Stream new log lines to on_line until stopped (the -v view)."""
        assert self.on_line is not None
        with self.log_path.open("r", errors="replace") as f:
            while True:
                line = f.readline()
                if line:
                    self.on_line(line.rstrip("\n"))
                    continue
                if self._stop_tail.is_set():
                    return
                time.sleep(0.1)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def _failure(self, what: str) -> OperationFailed:
        text = self.log_text()
        why = diagnose(text, self.engine.failures)
        lines = [what + (f": {why}" if why else "")]
        if text.strip():
            lines += [f"last lines of the {self.launch.engine} log:", tail(text)]
        return OperationFailed("\n".join(lines), hint=f"full log: {self.log_path}")

    def wait_ready(self, timeout: float, progress: ProgressReporter | None = None) -> None:
        """Poll the health route (where the engine has one), then /v1/models until it lists the model."""
        progress = progress or NullProgress()
        progress.start(None, f"waiting for {self.launch.engine} on port {self.launch.port}")
        root = self.launch.base_url.removesuffix("/v1")
        deadline = time.monotonic() + timeout
        try:
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                while True:
                    if (rc := self.exited()) is not None:
                        raise self._failure(f"{self.launch.engine} exited with status {rc} during start-up")
                    if _ready(client, root, self.launch):
                        return
                    if time.monotonic() > deadline:
                        raise self._failure(f"{self.launch.engine} was not ready after {timeout:g} s")
                    progress.update(0)
                    time.sleep(0.25)
        finally:
            progress.finish()

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM to the process group, SIGKILL after the grace period; wait for the port to free."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Children that outlived the leader (engine workers) go too.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self._stop_tail.set()
        if self._tail_thread is not None:
            self._tail_thread.join(2)
        wait_port_free(self.launch.host, self.launch.port, timeout=10)
        return self.proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _ready(client: httpx.Client, root: str, launch: Launch) -> bool:
    try:
        if launch.health_path and client.get(root + launch.health_path).status_code != 200:
            return False
        resp = client.get(root + "/v1/models")
        if resp.status_code != 200:
            return False
        ids = {m.get("id") for m in resp.json().get("data", [])}
    except (httpx.HTTPError, ValueError):
        return False
    return launch.served_name in ids
