"""Two network namespaces joined by a veth pair: two "hosts" on this machine, removed afterwards.

Root and iproute2 (`ip`) are needed. Names carry this process's pid so runs never collide; removal kills
whatever still runs inside the namespaces, deletes them (which deletes the veth pair) and checks it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

SUBNET = "10.213.0"


@dataclass(frozen=True)
class Host:
    ns: str
    addr: str
    link: str

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command inside this host: `ip netns exec NS ...`."""
        return ("ip", "netns", "exec", self.ns)


def available() -> str | None:
    """Why the namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def pids_in(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30).stdout
    return [int(p) for p in out.split()]


def _kill_all(ns: str, grace: float = 20.0) -> None:
    """SIGTERM, then SIGKILL, whatever still runs in the namespace (bounded in time)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in pids_in(ns):
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids_in(ns) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not pids_in(ns):
            return


@contextmanager
def two_hosts(tag: str = "") -> Iterator[tuple[Host, Host]]:
    """(head, follower): namespaces `llmops-h<pid>` and `llmops-f<pid>`, 10.213.0.1/24 and 10.213.0.2/24."""
    pid = f"{os.getpid()}{tag}"
    head = Host(f"llmops-h{pid}", f"{SUBNET}.1", f"lh{pid}"[:15])
    follower = Host(f"llmops-f{pid}", f"{SUBNET}.2", f"lf{pid}"[:15])
    made: list[str] = []
    try:
        for host in (head, follower):
            _ip("netns", "add", host.ns)
            made.append(host.ns)
        _ip("link", "add", head.link, "type", "veth", "peer", "name", follower.link)
        for host in (head, follower):
            _ip("link", "set", host.link, "netns", host.ns)
            _ip("-n", host.ns, "addr", "add", f"{host.addr}/24", "dev", host.link)
            _ip("-n", host.ns, "link", "set", host.link, "up")
            _ip("-n", host.ns, "link", "set", "lo", "up")
        yield head, follower
    finally:
        if head.link in links():  # made in the root namespace but never moved
            _ip("link", "del", head.link)
        for ns in made:
            _kill_all(ns)
            _ip("netns", "del", ns)
        assert not {head.ns, follower.ns} & namespaces()
        assert not {head.link, follower.link} & links()
