"""The gateway's guard slot: named prompt-injection rules on requests, a leak check on replies.

A pattern list is a baseline, not a defence (docs/gateway-cache.md has its measured rates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmops.gateway.stages import Stage, StageContext


def build_stage(ctx: StageContext) -> Stage | None:
    """The guard stage when the section or any route sets `guard:`; None (no stage) otherwise."""
    section = ctx.section.guard
    if section is None and all(r.guard is None for r in ctx.table.routes.values()):
        return None
    from llmops.gateway.guard.stage import GuardStage

    return GuardStage(section, ctx.table, ctx.metrics, ctx.environ)
