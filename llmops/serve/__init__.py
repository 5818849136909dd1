"""Serve a model: profiles -> engine argv -> a supervised, ready OpenAI-compatible endpoint.

`with running(model, node) as ep:` is the library entry point (bench uses it); `llmops serve` is the CLI.
Nothing heavy is imported here: engines run as subprocesses.
"""

from llmops.serve.api import Endpoint, Prepared, prepare, running, supervise

__all__ = ["Endpoint", "Prepared", "prepare", "running", "supervise"]
