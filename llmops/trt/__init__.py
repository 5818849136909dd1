"""`llmops trt build`: ONNX export, parity check, TensorRT engine, Triton model repository.

Each step is its own module (export, parity, engine, triton); `pipeline` chains them for the command and
`request` resolves its settings. torch, transformers, onnx, onnxruntime and tensorrt are imported inside
the functions that need them, so importing this package is cheap.
"""

from llmops.trt.parity import TOLERANCES, ParityReport
from llmops.trt.pipeline import BuildRequest, BuildResult, describe_plan, run_build
from llmops.trt.request import resolve_request

__all__ = [
    "TOLERANCES",
    "BuildRequest",
    "BuildResult",
    "ParityReport",
    "describe_plan",
    "resolve_request",
    "run_build",
]
