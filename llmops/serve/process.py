"""One engine process: start it in its own process group, wait until it serves, stop it cleanly.

The engine's group dies with llmops even when llmops is killed with SIGKILL: a tiny watchdog process
(`watchdog.py`) holds the read end of a pipe only llmops writes to, and stops the group when the pipe
closes without llmops having stopped the engine itself. Readiness counts only when the port's listening
socket belongs to our engine's group, so a second `serve` on a busy port never reports the first one's
engine as its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from llmops.errors import OperationFailed
from llmops.progress import NullProgress, ProgressReporter
from llmops.serve.engines.base import Engine, FailurePattern, Launch
from llmops.serve.ports import describe_holders, listens_in_group, wait_port_free

STOP_GRACE_S = 15.0
WATCHDOG = Path(__file__).with_name("watchdog.py")
DISARM = b"disarm"
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
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watch_fd: int | None = None
        self._foreign_port = False  # another process answered on our port: do not wait for it to free
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
                    self.launch.exec_argv,
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
        try:
            self._start_watchdog(self.proc.pid)
        except BaseException:
            self.stop()
            raise
        if self.on_line is not None:
            self._tail_thread = threading.Thread(target=self._follow, daemon=True)
            self._tail_thread.start()

    def _start_watchdog(self, pgid: int) -> None:
        """The process that stops the engine's group if llmops dies without stopping it."""
        read_fd, self._watch_fd = os.pipe()  # both ends close-on-exec: the engine never holds them
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WATCHDOG), str(pgid), str(STOP_GRACE_S)],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # not in our group: a signal to llmops's group leaves it be
            )
        finally:
            os.close(read_fd)

    def _disarm_watchdog(self) -> None:
        if self._watch_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._watch_fd, DISARM)
            os.close(self._watch_fd)
            self._watch_fd = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(5)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None

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
        answered_by_other = False
        try:
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                while True:
                    if (rc := self.exited()) is not None:
                        what = f"{self.launch.engine} exited with status {rc} during start-up"
                        if answered_by_other:
                            what += (
                                f"; port {self.launch.port} is served by another process, "
                                f"{describe_holders(self.launch.port)}"
                            )
                        raise self._failure(what)
                    if _ready(client, root, self.launch):
                        owned = listens_in_group(self.launch.port, self.pid)
                        if owned is not False:  # ours, or /proc cannot tell (not Linux)
                            return
                        answered_by_other = self._foreign_port = True
                    if time.monotonic() > deadline:
                        what = f"{self.launch.engine} was not ready after {timeout:g} s"
                        if answered_by_other:
                            what += f"; port {self.launch.port} answers from another process, " + (
                                describe_holders(self.launch.port)
                            )
                        raise self._failure(what)
                    progress.update(0)
                    time.sleep(0.25)
        finally:
            progress.finish()

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM to the process group, SIGKILL after the grace period; wait for the port to free."""
        if self.proc is None:
            self._disarm_watchdog()
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
        self._disarm_watchdog()
        self._stop_tail.set()
        if self._tail_thread is not None:
            self._tail_thread.join(2)
        if not self._foreign_port:
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
