"""Histogram arithmetic on scraped buckets: deltas between two scrapes, and quantiles the way PromQL's
histogram_quantile() computes them (linear interpolation inside the bucket that holds the rank)."""

from __future__ import annotations

import math

Buckets = dict[float, float]  # upper bound (le, +Inf included) -> cumulative count


def delta(prev: Buckets, cur: Buckets) -> Buckets:
    """Counts observed between two scrapes; a counter reset (a bucket went down) means the server
    restarted, and everything in `cur` is new."""
    if any(cur.get(le, 0.0) < prev.get(le, 0.0) for le in prev):
        return dict(cur)
    return {le: cur[le] - prev.get(le, 0.0) for le in cur}


def quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile (0..1) of a cumulative histogram, or None when it holds no observations."""
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == math.inf:
                return prev_le  # PromQL: the highest finite bound
            if count == prev_count:
                return le
            start = prev_le if prev_le > 0 or le <= 0 else 0.0
            return start + (le - start) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le
