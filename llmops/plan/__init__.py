"""The memory planner: will a model fit a node, and how many max-length requests can it serve at once?

from llmops.plan import PlanRequest, make_plan
plan = make_plan(model_profile, node_profile, PlanRequest(tp=4))
plan.verdict, plan.summary(), plan.recommendations
"""

from llmops.plan.compare import NodeRow, plan_nodes
from llmops.plan.model import Capacity, Plan, PlanRequest, Recommendation, Verdict
from llmops.plan.planner import make_plan, plan_settings
from llmops.plan.resolve import plan_for

__all__ = [
    "Capacity",
    "NodeRow",
    "Plan",
    "PlanRequest",
    "Recommendation",
    "Verdict",
    "make_plan",
    "plan_for",
    "plan_nodes",
    "plan_settings",
]
