"""CPU time the hypervisor took from this virtual machine while it had work: "steal" in /proc/stat.

On a cloud VM the host's other tenants can keep a virtual CPU from running for milliseconds at a time; every
process on that CPU stalls at once, and a latency benchmark's tail (or a gateway's loop lag) grows with it
while nothing on the machine looks busy. The kernel counts it per CPU (in USER_HZ ticks, 10 ms), and keeps
it out of the tasks' own run time. Reading /proc/stat costs a few microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

STEAL_FIELD = 8  # cpuN user nice system idle iowait irq softirq steal guest guest_nice
# Steal above this share of CPU time moved p99 TTFT by milliseconds on a 2-vCPU VM (benchmarks/bench_tail.py)
NOTE_SHARE = 0.02


def parse(text: bytes, cpus: Iterable[int] | None = None) -> tuple[int, int]:
    """(steal, total) ticks of these CPUs (None: all of them) from the text of /proc/stat."""
    prefixes = None if cpus is None else tuple(f"cpu{n} ".encode() for n in cpus)
    steal = total = 0
    for line in text.splitlines():
        if not line.startswith(b"cpu") or line[3:4] == b" ":  # the per-CPU lines, not the sum line
            continue
        if prefixes is not None and not line.startswith(prefixes):
            continue
        fields = line.split()
        ticks = [int(x) for x in fields[1 : STEAL_FIELD + 1]]  # guest time is already inside user
        steal += ticks[-1]
        total += sum(ticks)
    return steal, total


class StealMeter:
    """Steal of some CPUs since the meter started; `None` everywhere where /proc/stat cannot be read."""

    def __init__(self, cpus: Iterable[int] | None = None) -> None:
        self.cpus = None if cpus is None else tuple(cpus)
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        try:
            self._fd: int | None = os.open("/proc/stat", os.O_RDONLY)
        except OSError:
            self._fd = None
        self._start = self._read()

    def _read(self) -> tuple[int, int] | None:
        if self._fd is None:
            return None
        try:
            return parse(os.pread(self._fd, 1 << 16, 0), self.cpus)
        except (OSError, ValueError, IndexError):
            return None

    def stolen_s(self) -> float | None:
        """Seconds stolen from these CPUs (summed) since the start."""
        now = self._read()
        if now is None or self._start is None:
            return None
        return (now[0] - self._start[0]) / self._hz

    def share(self) -> float | None:
        """Stolen share of these CPUs' time since the start (0.05: 5 % of their time)."""
        now = self._read()
        if now is None or self._start is None or now[1] <= self._start[1]:
            return None
        return (now[0] - self._start[0]) / (now[1] - self._start[1])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def note(shares: Iterable[float | None]) -> str | None:
    """What to tell someone reading latency figures measured while the host stole CPU time; None if little."""
    worst = max((x for x in shares if x is not None), default=None)
    if worst is None or worst < NOTE_SHARE:
        return None
    return (
        f"the hypervisor kept this machine's CPUs from running {worst * 100:.1f}% of the time during the run "
        "(CPU steal): client and server stalled with it, so the latency tail is partly the host's; compare runs "
        "with similar steal, or gate on a dedicated machine"
    )
