"""The per-request series as plain numbers, exposed through a prometheus_client collector at scrape time.

Every request updates about a dozen series (requests, duration, tokens, cost, TTFT, overhead, in-flight,
tries). prometheus_client's own Counter and Histogram take a lock and go through several method calls per
update: about 15% of the gateway's instructions per request, measured with callgrind. These series are
only ever touched from the event loop's thread (updates and the /metrics scrape alike), so they need no
lock: an update is one attribute add (a histogram adds a `bisect`). The exposition is the same as
prometheus_client's objects give: names, HELP, TYPE, `le` values, no `_created` samples.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class GaugeChild(CounterChild):
    __slots__ = ()

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative; the last bound is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.sum += value
        self.counts[bisect_left(self.bounds, value)] += 1  # first bound >= value: `le` semantics


class Series:
    """One labelled metric family: `labels(*values)` returns its child (made on first use)."""

    def __init__(
        self, kind: str, name: str, doc: str, labelnames: Sequence[str], buckets: Sequence[float] = ()
    ) -> None:
        self.kind = kind  # counter | gauge | histogram
        self.name = name
        self.doc = doc
        self.labelnames = list(labelnames)
        self.bounds = (*(float(b) for b in buckets), float("inf"))
        self.children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
            if self.kind == "histogram":
                child = HistogramChild(self.bounds)
            elif self.kind == "gauge":
                child = GaugeChild()
            else:
                child = CounterChild()
            self.children[values] = child
        return child


class Collector:
    """Hands prometheus_client the families of these series when /metrics is scraped."""

    def __init__(self, series: list[Series]) -> None:
        self.series = series

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        for s in self.series:
            if s.kind == "histogram":
                les = [floatToGoString(b) for b in s.bounds]
                hist = HistogramMetricFamily(s.name, s.doc, labels=s.labelnames)
                for values, h in list(s.children.items()):
                    total, buckets = 0, []
                    for le, n in zip(les, h.counts, strict=True):
                        total += n
                        buckets.append((le, total))
                    hist.add_metric(list(values), buckets, h.sum)
                yield hist
            else:
                family = CounterMetricFamily if s.kind == "counter" else GaugeMetricFamily
                fam = family(s.name, s.doc, labels=s.labelnames)
                for values, c in list(s.children.items()):
                    fam.add_metric(list(values), c.value)
                yield fam
