"""Batch jobs: one JSONL input format, three backends (openai, anthropic, local), one output format.

The CLI (`llmops/commands/batch.py`) calls `llmops.batch.jobs`; nothing here imports typer or rich.
"""
