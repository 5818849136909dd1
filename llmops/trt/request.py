"""Resolve `trt build` settings: flags > llmops.yaml (trt:) > defaults, each with its origin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.settings import pick
from llmops.trt.engine import PRECISIONS, shape_profile
from llmops.trt.pipeline import BuildRequest

DEFAULT_PRECISION = "fp16"
DEFAULT_WORKSPACE_GIB = 4.0


def default_output(model_name: str) -> Path:
    return Path(f"trt-{re.sub(r'[^A-Za-z0-9._-]+', '-', model_name)}")


def resolve_request(
    catalog: Any,
    workspace: Any,
    *,
    model: str | None,
    precision: str | None,
    output: Path | None,
    triton: bool | None,
    onnx_only: bool,
    force: bool,
    workspace_gib: float | None,
    shapes: dict[str, int | None],
    materialize: bool = True,
) -> tuple[BuildRequest, dict[str, str]]:
    """The BuildRequest and where each value came from; materializes the checkpoint unless told not to."""
    ws = workspace.trt
    name = pick(model, workspace=workspace.model, default=workspace.default_model())
    loaded = catalog.model(name.value)
    profile = loaded.profile
    prec = pick(precision, workspace=ws.precision, default=DEFAULT_PRECISION)
    if prec.value not in PRECISIONS:
        raise UsageError(f"unknown precision '{prec.value}'", hint="use one of " + ", ".join(PRECISIONS))
    arch = profile.architecture
    given = {k: v for k, v in shapes.items() if v is not None}
    ws_shapes = {k: getattr(ws, k) for k in ("max_batch", "max_seq") if getattr(ws, k, None) is not None}
    merged = {**ws_shapes, **given}
    shape = shape_profile(arch.max_position_embeddings if arch else None, **merged)
    gib = pick(workspace_gib, workspace=ws.workspace_gib, default=DEFAULT_WORKSPACE_GIB)
    out = pick(output, workspace=Path(ws.output) if ws.output else None, default=default_output(profile.name))
    tri = pick(triton, workspace=ws.triton, default=False)
    checkpoint = None
    if materialize:
        from llmops.hf.checkpoint import materialize_checkpoint

        checkpoint = materialize_checkpoint(profile)
    req = BuildRequest(
        model=profile.name,
        checkpoint=checkpoint,
        precision=prec.value,
        profile=shape,
        workspace_gib=float(gib.value),
        output=Path(out.value),
        triton=bool(tri.value),
        onnx_only=onnx_only,
        force=force,
    )
    origins = {
        "model": name.origin,
        "precision": prec.origin,
        "workspace_gib": gib.origin,
        "output": out.origin,
        "triton": tri.origin,
        "checkpoint": "model profile",
        "tensorrt": "installed packages",
        "shapes": "flags" if given else ("workspace" if ws_shapes else "defaults"),
    }
    return req, origins
