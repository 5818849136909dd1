"""An engine that ended without llmops stopping it: what it died of, when, and what to try.

The supervisor (`EngineProcess`) watches the engine in a thread, samples its CPU time to tell busy from
idle, and counts the requests its log shows; when the engine ends on its own, this is the report:
one line naming the engine, the signal by name (or the exit status), the phase, the last log lines,
and the fix to try. Never "stopped": llmops did not stop it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import OperationFailed
from llmops.serve.exits import CRASH_SIGNALS, describe_exit, signal_name

# A finished request in an engine's access log (uvicorn's line, which both llama-cpp-python's and
# vLLM's servers print): `"POST /v1/chat/completions HTTP/1.1" 200`.
REQUEST_LINE = re.compile(r'"POST /v1/[a-z/_]+ HTTP/1\.[01]" \d{3}')
LOG_LINES = 3
LINE_WIDTH = 160


class EngineDied(BaseException):
    """Raised in the main thread when the engine dies under a running client (bench, try, batch):
    like KeyboardInterrupt, it unwinds whatever is waiting on the dead engine; the supervisor turns it
    into the death's report."""


@dataclass(frozen=True)
class EngineDeath:
    engine: str
    pid: int
    returncode: int
    ready: bool  # it had answered the readiness check
    busy: bool | None  # its CPU time grew in the last second (None: could not tell)
    requests_seen: int  # finished requests its log shows
    seconds_after_ready: float | None
    log_text: str
    log_path: Path
    diagnosis: str | None = None  # a known failure pattern in its log
    cpu_hint: str | None = None  # what to try for a native crash (the engine's own advice)

    @property
    def signal(self) -> str | None:
        return signal_name(self.returncode) if self.returncode < 0 else None

    def phase(self) -> str:
        if not self.ready:
            return "during start-up"
        n = self.requests_seen
        if self.busy is None:  # too soon after start-up to tell busy from idle
            return "before any request" if n == 0 else f"after {n} request{'s' if n != 1 else ''}"
        if self.busy:
            return (
                "while answering its first request"
                if n <= 1
                else f"while busy ({n} requests answered before)"
            )
        if n == 0:
            return "while idle, before any request"
        return f"while idle, after {n} request{'s' if n != 1 else ''}"

    def last_lines(self) -> str:
        """The log's last lines; for a native crash, faulthandler's line and the innermost Python frame
        of the crashing thread (its dump ends with a list of extension modules, not the cause)."""
        lines = [ln.strip() for ln in self.log_text.splitlines() if ln.strip()]
        fatal = [i for i, ln in enumerate(lines) if ln.startswith("Fatal Python error")]
        if fatal:
            after = lines[fatal[-1] + 1 :]
            start = next((i for i, ln in enumerate(after) if ln.startswith("Current thread")), 0)
            frame = next((ln for ln in after[start:] if ln.startswith("File ")), None)
            picked = [lines[fatal[-1]], *([f"crashed in {frame}"] if frame else [])]
        else:
            picked = lines[-LOG_LINES:]
        return " | ".join(ln if len(ln) <= LINE_WIDTH else ln[: LINE_WIDTH - 1] + "…" for ln in picked)

    def what_to_try(self) -> str:
        sig = self.signal
        if self.diagnosis:
            return self.diagnosis
        if sig in CRASH_SIGNALS:
            return self.cpu_hint or (
                "a native crash in the engine: check `llmops doctor` and the full log, "
                "and report it with the log"
            )
        if sig == "SIGKILL":
            return (
                "it was killed from outside (the kernel's out-of-memory killer is the usual cause: "
                "check `dmesg`; a smaller model or --max-model-len needs less memory)"
            )
        if sig is not None:
            return f"something sent it {sig}: check what else manages this process"
        return "see the full log"

    def message(self) -> str:
        """The one line: engine, signal or status, phase, last log lines."""
        when = self.phase()
        if self.seconds_after_ready is not None and self.ready:
            when += f", {self.seconds_after_ready:.1f} s after it was ready"
        line = f"{self.engine} (pid {self.pid}) {describe_exit(self.returncode)} {when}"
        if last := self.last_lines():
            line += f"; last log lines: {last}"
        return line

    def error(self) -> OperationFailed:
        return OperationFailed(self.message(), hint=f"try: {self.what_to_try()}; full log: {self.log_path}")
