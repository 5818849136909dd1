"""Split a job over a provider's per-batch limits, keeping input order (pure)."""

from __future__ import annotations


def split_ranges(sizes: list[int], *, max_requests: int, max_bytes: int) -> list[tuple[int, int]]:
    """[(first, count), ...] covering every request in order, each range within both limits.

    A single request over max_bytes is rejected earlier, by validation.
    """
    ranges: list[tuple[int, int]] = []
    first, count, size = 0, 0, 0
    for i, line_bytes in enumerate(sizes):
        if count and (count + 1 > max_requests or size + line_bytes > max_bytes):
            ranges.append((first, count))
            first, count, size = i, 0, 0
        count += 1
        size += line_bytes
    if count:
        ranges.append((first, count))
    return ranges
