"""Serve a model: profiles -> engine argv -> a supervised, ready OpenAI-compatible endpoint.

`with running(model, node) as ep:` is the library entry point (bench uses it); `llmops serve` is the CLI.
Nothing heavy is imported here: engines run as subprocesses.
"""

from llmops.serve.api import Endpoint, Prepared, dry_run, prepare, prepare_for, running, supervise
from llmops.serve.foreground import serve_foreground
from llmops.serve.k8s import manifests, to_yaml, write_manifests
from llmops.serve.ray import ray_steps

__all__ = [
    "Endpoint",
    "Prepared",
    "dry_run",
    "manifests",
    "prepare",
    "prepare_for",
    "ray_steps",
    "running",
    "serve_foreground",
    "supervise",
    "to_yaml",
    "write_manifests",
]
