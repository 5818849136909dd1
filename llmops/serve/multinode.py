"""One engine over several hosts with vLLM's own multi-node launcher: the command each host runs, the
follower's check that it can reach the head, and the head's view of which followers joined.

The same `llmops serve MODEL --nnodes N --master-addr HEAD` runs on every host with its own --node-rank:
rank 0 (the head) serves the API, the others run `vllm serve ... --headless`. Followers connect to the
head's master port (torch.distributed's store), so an established connection there is a joined follower.
"""

from __future__ import annotations

import errno
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import EnvironmentMissing
from llmops.profiles.serving import BY_NAME
from llmops.serve.settings import ServeSettings

# A follower gives up on an unreachable head after this long (no route, filtered, nothing answering);
# a head that refuses (up, not listening yet) is waited for up to the run's ready timeout.
REACH_TIMEOUT_S = 3.0
RANK_FLAGS = ("nnodes", "node_rank", "master_addr", "master_port")


@dataclass(frozen=True)
class HostCommand:
    rank: int
    role: str  # "head" or "follower"
    command: str

    def to_json(self) -> dict:
        return {"rank": self.rank, "role": self.role, "command": self.command}


def _flag_args(name: str, value: object) -> list[str]:
    flag = BY_NAME[name].flag
    assert flag is not None
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag.removeprefix("--")]
    return [flag, str(value)]


def host_commands(s: ServeSettings) -> list[HostCommand]:
    """`llmops serve` for each host, head first: the flags this run was given, with each host's rank."""
    if s.nnodes <= 1:
        return []
    base = ["llmops", "serve", s.model.name, "--node", s.node.name]
    for name, setting in s.resolved.items():
        spec = BY_NAME.get(name)
        if setting.origin != "flag" or spec is None or not spec.flag or name in RANK_FLAGS:
            continue
        if setting.value is not None:
            base += _flag_args(name, setting.value)
    cluster = ["--nnodes", str(s.nnodes), "--master-addr", s["master_addr"]]
    cluster += ["--master-port", str(s["master_port"])]
    return [
        HostCommand(
            rank, "head" if rank == 0 else "follower", shlex.join([*base, *cluster, "--node-rank", str(rank)])
        )
        for rank in range(s.nnodes)
    ]


def wait_for_head(addr: str, port: int, timeout: float, *, reach_timeout: float = REACH_TIMEOUT_S) -> None:
    """Return once the head's master port accepts a TCP connection. An address that does not answer
    fails within `reach_timeout` seconds; a head that refuses (not started yet) is retried until
    `timeout`. Raises EnvironmentMissing naming the head."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, port), timeout=reach_timeout):
                return
        except ConnectionRefusedError:
            if time.monotonic() + 0.5 > deadline:
                raise EnvironmentMissing(
                    f"the head {addr}:{port} refused connections for {timeout:g} s: nothing listens there",
                    hint="start the head first (`llmops serve ... --node-rank 0`), and check --master-port",
                ) from None
            time.sleep(0.5)
        except OSError as exc:  # TimeoutError included
            why = "no answer" if isinstance(exc, TimeoutError) else _reason(exc)
            raise EnvironmentMissing(
                f"cannot reach the head {addr}:{port} from this host ({why} within {reach_timeout:g} s)",
                hint="check --master-addr (the head's address as this host sees it) and the network between",
            ) from None


def route_to(addr: str, port: int) -> tuple[str, str | None]:
    """This host's address toward `addr`, and the interface that holds it (None when not found)."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((addr, port))  # UDP: no packet is sent, the kernel picks the route
        local = probe.getsockname()[0]
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address (SIOCGIFADDR)
            if socket.inet_ntoa(packed[20:24]) == local:
                return local, name
    return local, None


def network_env(s: ServeSettings, environ: dict[str, str]) -> dict[str, str]:
    """What vLLM's workers need to find each other across hosts: the address and interface facing the
    head (torch's gloo otherwise takes the hostname's address, often 127.0.x.1, and the mesh fails).
    Values the caller already exported win."""
    if s.nnodes <= 1:
        return {}
    try:
        local, ifname = route_to(s["master_addr"], s["master_port"])
    except OSError:
        return {}  # no route: the follower's reach check, or the head's own bind, says so
    env = {"VLLM_HOST_IP": local}
    if ifname:
        env |= {"GLOO_SOCKET_IFNAME": ifname, "TP_SOCKET_IFNAME": ifname}
    return {k: v for k, v in env.items() if k not in environ}


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "no route to it"
    return exc.strerror or type(exc).__name__


def joined_peers(port: int | None = None, *, besides: int | None = None) -> set[str]:
    """Remote addresses with an established TCP connection to this host (to its `port` when given, not to
    its port `besides`), as /proc/net shows them in this network namespace (Linux; empty elsewhere)."""
    peers: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            local_port = int(local.rsplit(":", 1)[1], 16)
            if state == "01" and port in (None, local_port) and local_port != besides:
                peers.add(_addr(remote.rsplit(":", 1)[0]))
    return peers


LOCAL = ("127.", "::1", "0.0.0.0", "::")


def remote_peers(s: ServeSettings) -> set[str]:
    """The other hosts this one is connected to: the head for a follower, the followers for the head (the
    API's clients are not hosts: connections to the API port do not count)."""
    peers = {p for p in joined_peers(besides=s["port"]) if not p.startswith(LOCAL)}
    if s["node_rank"] > 0:
        return peers & {s["master_addr"]}
    return peers - {s["master_addr"]}


class PeerWatch:
    """The hosts of a multi-node engine lose each other silently (vLLM's head idles on after a follower is
    killed; a follower outlives its head). Poll the established connections: a host seen once and then
    without any connection for `grace` seconds is lost."""

    def __init__(self, s: ServeSettings, grace: float = 3.0) -> None:
        self.s = s
        self.grace = grace
        self.last_seen: dict[str, float] = {}
        self.lost: str | None = None

    def poll(self, now: float | None = None) -> str | None:
        """The lost host's description, once one is lost (None while all are there)."""
        now = time.monotonic() if now is None else now
        for peer in remote_peers(self.s):
            self.last_seen[peer] = now
        gone = sorted(p for p, seen in self.last_seen.items() if now - seen > self.grace)
        if gone and self.lost is None:
            head = self.s["node_rank"] == 0
            what = "follower" if head else "head"
            self.lost = (
                f"lost the {what} {', '.join(gone)}: its connections to this host closed "
                f"{now - self.last_seen[gone[0]]:.0f} s ago"
                + (" (killed, stopped or unreachable); the engine here was stopped" if head else "")
                + ("" if head else "; this follower stopped its engine")
            )
        return self.lost


def _addr(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    text = socket.inet_ntop(socket.AF_INET6, words)
    return text.removeprefix("::ffff:")


def missing_followers(s: ServeSettings) -> str:
    """For a head's timeout: which followers have not joined, and the command that starts one."""
    joined = sorted(remote_peers(s))
    expected = s.nnodes - 1
    seen = f"connected from {', '.join(joined)}" if joined else "none connected"
    return (
        f"{max(expected - len(joined), 0)} of {expected} follower(s) missing at {s['master_addr']}:"
        f"{s['master_port']} ({seen}); on each follower run: {host_commands(s)[1].command}"
        + (" (with its own --node-rank)" if expected > 1 else "")
    )
