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

from llmops.errors import OperationFailed, UsageError
from llmops.progress import NullProgress, ProgressReporter
from llmops.serve.death import REQUEST_LINE, EngineDeath
from llmops.serve.engines.base import PORT_IN_USE, Engine, FailurePattern, Launch
from llmops.serve.exits import CRASH_SIGNALS, describe_exit, signal_name
from llmops.serve.ports import describe_holders, listens_in_group, wait_port_free

STOP_GRACE_S = 15.0
WATCH_INTERVAL_S = 0.2  # how often the watcher looks at the engine: a death is noticed within this
BUSY_WINDOW_S = 1.0  # CPU time spent within this before the end means it was busy
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
        self._stopping = False  # set before llmops signals the engine: an end after that is a stop
        self._ready_at: float | None = None
        self._death: EngineDeath | None = None
        self._watch_thread: threading.Thread | None = None
        self._samples: list[tuple[float, float]] = []  # (monotonic time, CPU seconds of its processes)
        self._death_lock = threading.Lock()
        self._samples_lock = threading.Lock()
        self.on_death: Callable[[EngineDeath], None] | None = None  # called from the watcher thread

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
        self._watch_thread = threading.Thread(target=self._watch, daemon=True, name="engine-watch")
        self._watch_thread.start()

    def _watch(self) -> None:
        """Notice the engine's end within WATCH_INTERVAL_S, busy or idle; record a death we did not cause."""
        assert self.proc is not None
        while True:
            # Start-up's own work is not a request: sample only once the engine is ready. Sampled before
            # the poll that reaps it, so a dead engine's last CPU time (still in its zombie's stat) counts.
            if self._ready_at is not None:
                self._sample_cpu()
            if self.proc.poll() is not None:
                break
            time.sleep(WATCH_INTERVAL_S)
        if not self._stopping:
            self._record_death()

    def _sample_cpu(self) -> None:
        assert self.proc is not None
        if (cpu := _cpu_seconds(self.proc.pid)) is not None:
            with self._samples_lock:  # the watcher and wait_ready (the sample at readiness) both add
                now = time.monotonic()
                self._samples.append((now, cpu))
                while len(self._samples) > 2 and self._samples[1][0] < now - BUSY_WINDOW_S:
                    self._samples.pop(0)

    def _record_death(self) -> None:
        assert self.proc is not None and self.proc.returncode is not None
        with self._death_lock:
            if self._death is not None:
                return
            with self._samples_lock:
                ended, samples = time.monotonic(), list(self._samples)
            busy = None
            if len(samples) >= 2:
                spent, span = (
                    samples[-1][1] - samples[0][1],
                    samples[-1][0] - samples[0][0] + WATCH_INTERVAL_S,
                )
                busy = spent > 0.05 * span
            text = self.log_text()
            self._death = EngineDeath(
                engine=self.launch.engine,
                pid=self.proc.pid,
                returncode=self.proc.returncode,
                ready=self._ready_at is not None,
                busy=busy,
                requests_seen=len(REQUEST_LINE.findall(text)),
                seconds_after_ready=None if self._ready_at is None else ended - self._ready_at,
                log_text=text,
                log_path=self.log_path,
                diagnosis=diagnose(text, self.engine.failures),
                cpu_hint=getattr(self.engine, "crash_hint", None),
            )
        if self.on_death is not None:
            self.on_death(self._death)

    @property
    def ready(self) -> bool:
        return self._ready_at is not None

    def death(self) -> EngineDeath | None:
        """How the engine died, when it ended without llmops stopping it (None while it runs)."""
        if self._death is None and self._watch_thread is not None and self.exited() is not None:
            self._watch_thread.join(WATCH_INTERVAL_S * 5 + 1)
        return self._death

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

    def wait_ready(
        self,
        timeout: float,
        progress: ProgressReporter | None = None,
        waiting_on: Callable[[], str] | None = None,
    ) -> None:
        """Poll the health route (where the engine has one), then /v1/models until it lists the model.

        A headless engine (a multi-node follower) has no API: it is ready once started. `waiting_on`
        says what a timeout was still waiting for (a head's missing followers)."""
        if self.launch.headless:
            if (rc := self.exited()) is not None:
                raise self._failure(f"{self.launch.engine} {describe_exit(rc)} during start-up")
            self._ready_at = time.monotonic()
            return
        progress = progress or NullProgress()
        progress.start(None, f"waiting for {self.launch.engine} on port {self.launch.port}")
        root = self.launch.base_url.removesuffix("/v1")
        deadline = time.monotonic() + timeout
        answered_by_other = False
        try:
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                while True:
                    if (rc := self.exited()) is not None:
                        if answered_by_other or PORT_IN_USE.search(self.log_text()):
                            raise UsageError(
                                f"port {self.launch.port} is already in use ("
                                f"{describe_holders(self.launch.port)}), so {self.launch.engine} could "
                                "not listen on it",
                                hint="choose another --port, or stop the process that holds it",
                            )
                        if rc < 0 and (death := self.death()) is not None:
                            raise death.error()  # killed by a signal: the one-line death report
                        raise self._failure(f"{self.launch.engine} {describe_exit(rc)} during start-up")
                    if _ready(client, root, self.launch):
                        owned = listens_in_group(self.launch.port, self.pid)
                        if owned is not False:  # ours, or /proc cannot tell (not Linux)
                            self._ready_at = time.monotonic()
                            self._sample_cpu()  # the busy window starts at readiness
                            return
                        answered_by_other = self._foreign_port = True
                    if time.monotonic() > deadline:
                        what = f"{self.launch.engine} was not ready after {timeout:g} s"
                        if waiting_on is not None:
                            what += f"; {waiting_on()}"
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
        # An engine that already ended was not stopped by us. A client can see its connections close a
        # moment before the dying process can be reaped: give an end already under way that moment.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(0.05)
        self._stopping = self.proc.poll() is None
        if self._stopping:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._stopping and signal_name(self.proc.returncode) in CRASH_SIGNALS:
            self._record_death()  # it crashed on its own while we were stopping it: no signal of ours
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


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of the engine's process group, from /proc; None where it cannot tell."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return total / tick if total or Path(f"/proc/{pid}").exists() else None


def _process_tree(pid: int, limit: int = 256) -> list[int]:
    """The process and its descendants (engine workers), from /proc's children lists."""
    found, todo = [], [pid]
    while todo and len(found) < limit:
        p = todo.pop()
        found.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


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
