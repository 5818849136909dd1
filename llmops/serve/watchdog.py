"""Stop an engine's process group when the llmops process that started it dies, even by SIGKILL.

Started by `EngineProcess` as `python -I -S watchdog.py PGID GRACE` in its own session, with stdin the read
end of a pipe whose write end only llmops holds. llmops writes one byte ("disarm") once it has stopped the
engine itself; end of file without it means llmops is gone: SIGTERM to the group, SIGKILL after GRACE
seconds. Standard library only and no llmops import, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    pgid, grace = int(argv[1]), float(argv[2])
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a Ctrl-C or a closed terminal is llmops's to handle
    received = b""
    while chunk := os.read(0, 64):
        received += chunk
    if b"disarm" not in received:
        stop_group(pgid, grace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
