"""`llmops bench`: an accurate streaming latency benchmark that gates CI.

Library use: `resolve(BenchFlags(...), workspace, catalog)` then `bench(settings)` -> (BenchResult, points).
Nothing heavy is imported here.
"""

from llmops.bench.api import bench, check_outputs, write_outputs
from llmops.bench.config import BenchFlags, BenchSettings, resolve
from llmops.bench.metrics import LATENCIES
from llmops.bench.result import BenchConfig, BenchResult

__all__ = [
    "LATENCIES",
    "BenchConfig",
    "BenchFlags",
    "BenchResult",
    "BenchSettings",
    "bench",
    "check_outputs",
    "resolve",
    "write_outputs",
]
