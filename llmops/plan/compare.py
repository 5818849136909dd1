"""Plan one model on every node profile, for `llmops plan --all-nodes`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmops.errors import UsageError
from llmops.plan.model import Plan
from llmops.plan.planner import plan_settings
from llmops.profiles.schema import ModelProfile, NodeProfile, StrictModel


class NodeRow(StrictModel):
    """One node's plan, or why it cannot run the model at all (no GPU, too few GPUs)."""

    node: str
    plan: Plan | None = None
    error: str | None = None


def plan_nodes(
    model: ModelProfile, nodes: list[NodeProfile], resolved: Mapping[str, Any], **what_if: Any
) -> list[NodeRow]:
    """The same resolved settings planned on each node."""
    rows = []
    for node in nodes:
        try:
            rows.append(NodeRow(node=node.name, plan=plan_settings(model, node, resolved, **what_if)))
        except UsageError as exc:
            rows.append(NodeRow(node=node.name, error=exc.message))
    return rows
