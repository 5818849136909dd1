"""Step 1: export a Hugging Face causal LM to ONNX with dynamic batch and sequence axes."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llmops.errors import OperationFailed, require_module

OnnxDtype = Literal["float32", "float16", "bfloat16"]
TWO_GB = 2 * 1024**3
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    dtype: OnnxDtype
    seconds: float
    external_data: bool
    size_bytes: int
    opset: int
    logits_elem_type: str


def load_for_export(checkpoint: Path, dtype: OnnxDtype = "float32") -> Any:
    """The model in eval mode with eager attention (the form torch.onnx.export traces cleanly); local only."""
    from llmops.hf.loading import load_model

    return load_model(checkpoint, dtype=dtype, attn_implementation="eager", extra="onnx")


def logits_only(model: Any) -> Any:
    """Wrap the model so its forward takes (input_ids, attention_mask) and returns logits only (no cache)."""
    torch = require_module("torch", extra="onnx", purpose="ONNX export")

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    return LogitsOnly(model).eval()


def parameter_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def export_onnx(model: Any, path: Path, *, dtype: OnnxDtype = "float32") -> ExportResult:
    """torch.onnx.export(dynamo=True) with dynamic batch/sequence; weights go to external data above 2 GB."""
    torch = require_module("torch", extra="onnx", purpose="ONNX export")
    onnx = require_module("onnx", extra="onnx", purpose="ONNX export")
    model = model.to(getattr(torch, dtype))
    wrapper = logits_only(model)
    # Example sizes above 1 so torch.export does not specialise the dynamic axes to 0/1.
    example = (torch.ones((2, 8), dtype=torch.int64), torch.ones((2, 8), dtype=torch.int64))
    batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("sequence", min=1, max=131072)
    dynamic = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
    big = parameter_bytes(model) > TWO_GB
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        # the exporter prints its progress on stdout, which belongs to results (--json)
        with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
            program = torch.onnx.export(
                wrapper,
                example,
                dynamo=True,
                dynamic_shapes=dynamic,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
            )
        program.save(str(path), external_data=big)
    except Exception as exc:  # torch.export raises many kinds; one line with the cause is what a user needs
        raise OperationFailed(
            f"ONNX export of {type(model).__name__} failed: {str(exc).splitlines()[0]}",
            hint="run with -v for the full trace",
        ) from exc
    seconds = time.perf_counter() - start
    check_onnx(path)
    proto = onnx.load(str(path), load_external_data=False)
    size = sum(
        f.stat().st_size for f in path.parent.iterdir() if f == path or f.name.startswith(path.name + ".")
    )
    out = next(o for o in proto.graph.output if o.name == OUTPUT_NAME)
    elem = onnx.TensorProto.DataType.Name(out.type.tensor_type.elem_type)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ExportResult(
        path=path,
        dtype=dtype,
        seconds=seconds,
        external_data=big,
        size_bytes=size,
        opset=opset,
        logits_elem_type=elem,
    )


def check_onnx(path: Path) -> None:
    """onnx.checker on the file path (the path form also handles models with external data)."""
    onnx = require_module("onnx", extra="onnx", purpose="ONNX checking")
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise OperationFailed(f"{path} fails onnx.checker: {str(exc).splitlines()[0]}") from exc


def has_qdq(path: Path) -> bool:
    """Whether the graph has explicit quantization (Q/DQ nodes), which int8/fp8 builds need."""
    onnx = require_module("onnx", extra="onnx", purpose="reading ONNX")
    proto = onnx.load(str(path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
