"""What `llmops plan` plans: the model, node and serving settings resolved exactly as `serve` resolves them."""

from __future__ import annotations

from typing import Any

from llmops.plan.compare import NodeRow, plan_nodes
from llmops.plan.model import Plan
from llmops.plan.planner import plan_settings
from llmops.settings import Resolver, resolve_model_node


def plan_for(
    catalog: Any,
    workspace: Any,
    model: str | None,
    node: str | None,
    flags: dict[str, Any],
    *,
    gpus: int | None = None,
    gpu_memory_gib: float | None = None,
    all_nodes: bool = False,
) -> Plan | tuple[str, list[NodeRow]]:
    """One plan, or (model name, one row per node profile) for --all-nodes.

    Precedence as everywhere: flags > LLMOPS_SERVE_* > llmops.yaml `serve:` > the model profile > defaults;
    a setting the chosen engine would ignore is refused, as `serve` refuses it.
    """
    from llmops.serve.engines import check_supported, get_engine
    from llmops.serve.settings import resolve_settings

    resolver = Resolver("serve", workspace.serve)
    loaded_model, loaded_node = resolve_model_node(
        catalog, workspace, model, node, resolver=resolver, need_node=not all_nodes
    )
    profile = loaded_model.profile
    node_profile = loaded_node.profile if loaded_node is not None else None
    settings = resolve_settings(profile, node_profile, flags, resolver=resolver)  # type: ignore[arg-type]
    check_supported(get_engine(settings.engine), settings.resolved)
    what_if = {"gpus": gpus, "gpu_memory_gib": gpu_memory_gib}
    if all_nodes:
        nodes = [loaded.profile for loaded in catalog.all("node")]
        return profile.name, plan_nodes(profile, nodes, settings.resolved, **what_if)
    return plan_settings(profile, node_profile, settings.resolved, **what_if)  # type: ignore[arg-type]
