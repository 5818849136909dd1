"""Resolve `trt build` settings through the one resolver: flags > $LLMOPS_TRT_* > llmops.yaml (trt:) > defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.settings import Resolved, Resolver, resolve_model_node
from llmops.trt.engine import PRECISIONS, shape_profile
from llmops.trt.pipeline import BuildRequest

DEFAULT_PRECISION = "fp16"
DEFAULT_WORKSPACE_GIB = 4.0
SHAPE_KEYS = ("min_batch", "opt_batch", "max_batch", "min_seq", "opt_seq", "max_seq")


def default_output(model_name: str) -> Path:
    return Path(f"trt-{re.sub(r'[^A-Za-z0-9._-]+', '-', model_name)}")


def resolve_request(
    catalog: Any,
    workspace: Any,
    *,
    model: str | None,
    precision: str | None = None,
    output: Path | None = None,
    triton: bool | None = None,
    onnx_only: bool = False,
    force: bool = False,
    workspace_gib: float | None = None,
    shapes: dict[str, int | None] | None = None,
) -> tuple[BuildRequest, Resolved]:
    """The BuildRequest and every setting with its origin; loads nothing and writes nothing."""
    r = Resolver("trt", workspace.trt)
    loaded, _ = resolve_model_node(catalog, workspace, model, resolver=r, need_node=False)
    profile = loaded.profile
    prec = r.take("precision", precision, default=DEFAULT_PRECISION)
    if prec not in PRECISIONS:
        raise UsageError(f"unknown precision '{prec}'", hint="use one of " + ", ".join(PRECISIONS))
    given = {k: r.take(k, (shapes or {}).get(k), cast=int) for k in SHAPE_KEYS}
    arch = profile.architecture
    shape = shape_profile(arch.max_position_embeddings if arch else None, **given)
    for key in SHAPE_KEYS:
        if given[key] is None:
            r.set(key, getattr(shape, key), "default")
    gib = r.take("workspace_gib", workspace_gib, default=DEFAULT_WORKSPACE_GIB)
    out = r.take("output", output, default=default_output(profile.name))
    r.set("output", Path(out).expanduser(), r.resolved.origin("output") or "default")
    tri = r.take("triton", triton, default=False)
    r.take("onnx_only", True if onnx_only else None, default=False, env=False)
    req = BuildRequest(
        model=profile.name,
        source=profile,
        checkpoint=None,
        precision=prec,
        profile=shape,
        workspace_gib=float(gib),
        output=r.resolved.value("output"),
        triton=bool(tri),
        onnx_only=onnx_only,
        force=force,
    )
    return req, r.resolved
