"""Batch jobs: one JSONL input format, three backends (openai, anthropic, local), one output format.

The front door the CLI (`llmops/commands/batch.py`) uses; nothing here imports typer or rich.
"""

from llmops.batch.jobs import (
    Interrupted,
    Run,
    SubmitPlan,
    cancel,
    estimate,
    inspect,
    list_jobs,
    results_path,
    resume,
    submit,
    validate,
    write_results,
)
from llmops.batch.plan import plan_submit
from llmops.batch.store import JobStore

__all__ = [
    "Interrupted",
    "JobStore",
    "Run",
    "SubmitPlan",
    "cancel",
    "estimate",
    "inspect",
    "list_jobs",
    "plan_submit",
    "results_path",
    "resume",
    "submit",
    "validate",
    "write_results",
]
