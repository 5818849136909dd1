"""Signals for commands that write staged outputs (trt build, quantize)."""

from __future__ import annotations


def sigterm_unwinds() -> None:
    """A killed run (SIGTERM) unwinds like Ctrl-C, so a staged output is removed, never left half-written."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
