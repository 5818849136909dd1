"""Plan one model on every node profile, for `llmops plan --all-nodes`."""

from __future__ import annotations

from llmops.errors import UsageError
from llmops.plan.model import Plan, PlanRequest
from llmops.plan.planner import make_plan
from llmops.profiles.schema import ModelProfile, NodeProfile, StrictModel


class NodeRow(StrictModel):
    """One node's plan, or why it cannot run the model at all (no GPU, too few GPUs)."""

    node: str
    plan: Plan | None = None
    error: str | None = None


def plan_nodes(
    model: ModelProfile, nodes: list[NodeProfile], req: PlanRequest | None = None
) -> list[NodeRow]:
    rows = []
    for node in nodes:
        try:
            rows.append(NodeRow(node=node.name, plan=make_plan(model, node, req)))
        except UsageError as exc:
            rows.append(NodeRow(node=node.name, error=exc.message))
    return rows
