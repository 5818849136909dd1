"""`llmops bench`: an accurate streaming latency benchmark that gates CI.

Library use: `resolve(BenchFlags(...), workspace, catalog)` then `bench(resolved)` -> (BenchResult, points).
Nothing heavy is imported here.
"""
