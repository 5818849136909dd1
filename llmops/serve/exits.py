"""How a process ended, in words: the signal by name and meaning, or the exit status."""

from __future__ import annotations

import contextlib
import signal

# Signals a broken native kernel raises (an engine's own crash, never a stop someone sent).
CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGILL", "SIGBUS", "SIGFPE", "SIGABRT"})


def signal_name(returncode: int | None) -> str | None:
    """'SIGSEGV' for a process killed by signal 11 (Popen's -11, or a shell's 139); None otherwise."""
    if returncode is None:
        return None
    num = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 160 else 0
    if num <= 0:
        return None
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def describe_exit(returncode: int | None) -> str:
    """'died of SIGSEGV (segmentation fault)', 'exited with status 3', 'exited cleanly (status 0)'."""
    if returncode is None:
        return "is still running"
    if returncode < 0 and (name := signal_name(returncode)):
        meaning = ""
        with contextlib.suppress(ValueError):
            meaning = (signal.strsignal(-returncode) or "").lower()
        return f"died of {name}" + (f" ({meaning})" if meaning and meaning != name.lower() else "")
    if returncode == 0:
        return "exited cleanly (status 0)"
    return f"exited with status {returncode}"
