"""Arrival times, computed ahead of the run so they never drift with the event loop."""

from __future__ import annotations

import math
import random


def arrival_offsets(n: int, rate: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """Seconds from the start at which each of n requests is due.

    rate=inf sends everything at once (a concurrency cap then paces it). Otherwise gaps are gamma-distributed
    with mean 1/rate: burstiness 1 is a Poisson process, below 1 burstier, above 1 more regular.
    """
    if n <= 0:
        return []
    if math.isinf(rate):
        return [0.0] * n
    if rate <= 0 or burstiness <= 0:
        raise ValueError("request rate and burstiness must be positive")
    rng = random.Random(seed)
    theta = 1.0 / (rate * burstiness)
    out, t = [], 0.0
    for _ in range(n):
        out.append(t)
        t += rng.gammavariate(burstiness, theta)
    return out


def arrivals_within(duration: float, rate: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """The arrivals of a Poisson/gamma process that fall inside the first `duration` seconds."""
    if math.isinf(rate):
        raise ValueError("an infinite rate has no fixed number of arrivals; pace it with a concurrency cap")
    expected = int(duration * rate * 1.5) + 16
    offsets = arrival_offsets(expected, rate, burstiness, seed)
    while offsets[-1] < duration:  # rare: extend with the same seed stream
        expected *= 2
        offsets = arrival_offsets(expected, rate, burstiness, seed)
    return [t for t in offsets if t < duration]
