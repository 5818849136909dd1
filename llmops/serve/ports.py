"""Ports: is one free, find a free one, wait until one is released, and who holds one (Linux /proc)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_free(host: str, port: int) -> bool:
    """True when a server could bind host:port now (SO_REUSEADDR, as uvicorn and vLLM bind)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now on host."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port_free(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_free(host, port):
            return True
        time.sleep(0.1)
    return port_free(host, port)


# --- who listens on a port (Linux: /proc/net/tcp{,6} and /proc/PID/fd) ------------------------------


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command})"


def listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on `port` (any address); None where /proc/net/tcp is not available."""
    found: set[str] = set()
    readable = False
    for name in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found if readable else None


def _pids() -> list[int]:
    try:
        return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return []


def _has_socket(pid: int, inodes: set[str]) -> bool:
    wanted = {f"socket:[{i}]" for i in inodes}
    try:
        with os.scandir(PROC / str(pid) / "fd") as fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in wanted:
                        return True
                except OSError:
                    continue
    except OSError:
        return False
    return False


def command_of(pid: int, width: int = 120) -> str:
    """A process's command line from /proc, shortened for one line."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    text = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or "?"
    return text if len(text) <= width else text[: width - 3] + "..."


def port_holders(port: int, pids: list[int] | None = None) -> list[Holder]:
    """The processes (among `pids`, else all visible ones) with a socket listening on `port`."""
    inodes = listening_inodes(port)
    if not inodes:
        return []
    return [
        Holder(pid, command_of(pid))
        for pid in (pids if pids is not None else _pids())
        if _has_socket(pid, inodes)
    ]


def group_pids(pgid: int) -> list[int]:
    """Processes in process group `pgid` (from /proc/PID/stat)."""
    members = []
    for pid in _pids():
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(pid)
    return members


def listens_in_group(port: int, pgid: int) -> bool | None:
    """Whether a process of group `pgid` listens on `port`; None when /proc cannot tell (not Linux)."""
    inodes = listening_inodes(port)
    if inodes is None:
        return None
    return any(_has_socket(pid, inodes) for pid in group_pids(pgid)) if inodes else False


def describe_holders(port: int) -> str:
    """'held by pid N (command)' for a busy port, or a plain note when the holder is not visible."""
    holders = port_holders(port)
    if holders:
        return "held by " + ", ".join(h.describe() for h in holders)
    if listening_inodes(port) is None:
        return "held by another process"
    return "held by another process (not visible to this user), or just released"
