"""Step 3: build a TensorRT engine from the ONNX file with the API of the installed TensorRT (10 or 11).

TensorRT 10 is weakly typed by default: precision comes from builder flags (FP16, BF16; INT8/FP8 with an
explicitly quantized ONNX). TensorRT 11 removed those flags and is always strongly typed: the ONNX file must
already carry the precision (an fp16/bf16 export, or Q/DQ nodes from ModelOpt), so `recipe()` says which
ONNX to build from. The decision functions are pure; only `build_engine` touches `tensorrt`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import PositiveInt, model_validator

from llmops.errors import EnvironmentMissing, MissingExtra, OperationFailed, UsageError
from llmops.profiles.schema import StrictModel

Precision = Literal["fp32", "fp16", "bf16", "fp8", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "fp8", "int8")
ONNX_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "float32", "int8": "float32"}
MODELOPT_HINT = (
    "quantize the ONNX with TensorRT Model Optimizer (pip install nvidia-modelopt[onnx]; "
    "python -m modelopt.onnx.quantization --quantize_mode {mode} --onnx_path model.onnx)"
)


class ShapeProfile(StrictModel):
    """The optimization profile: min <= opt <= max for batch and sequence length."""

    min_batch: PositiveInt = 1
    opt_batch: PositiveInt = 1
    max_batch: PositiveInt = 8
    min_seq: PositiveInt = 1
    opt_seq: PositiveInt = 128
    max_seq: PositiveInt = 512

    @model_validator(mode="after")
    def _ordered(self) -> ShapeProfile:
        for axis in ("batch", "seq"):
            lo, mid, hi = (getattr(self, f"{k}_{axis}") for k in ("min", "opt", "max"))
            if not lo <= mid <= hi:
                raise ValueError(f"need --min-{axis} <= --opt-{axis} <= --max-{axis}, got {lo}, {mid}, {hi}")
        return self

    def shapes(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(min, opt, max) shapes of input_ids and attention_mask: (batch, sequence)."""
        return (
            (self.min_batch, self.min_seq),
            (self.opt_batch, self.opt_seq),
            (self.max_batch, self.max_seq),
        )


def shape_profile(max_positions: int | None = None, **values: int | None) -> ShapeProfile:
    """A validated profile from flag values (None = default); exit 2 with the rule that broke."""
    from pydantic import ValidationError

    given = {k: v for k, v in values.items() if v is not None}
    if max_positions:  # defaults shrink to fit a short-context model; explicit values are checked below
        defaults = ShapeProfile.model_fields
        given.setdefault("max_seq", min(defaults["max_seq"].default, max_positions))
        given.setdefault("opt_seq", min(defaults["opt_seq"].default, given["max_seq"]))
    try:
        profile = ShapeProfile(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        raise UsageError(f"bad shape profile: {where + ': ' if where else ''}{msg}") from exc
    if max_positions and profile.max_seq > max_positions:
        raise UsageError(
            f"--max-seq {profile.max_seq} exceeds the model's {max_positions} positions",
            hint=f"use --max-seq {max_positions} or less",
        )
    return profile


@dataclass(frozen=True)
class BuildRecipe:
    """How to build for one precision on one TensorRT major version."""

    trt_major: int
    precision: str
    onnx_dtype: str  # which ONNX export the build reads: float32, float16 or bfloat16
    strongly_typed: bool  # create_network(1 << STRONGLY_TYPED) on 10; always on (flag ignored) on 11
    flags: tuple[str, ...]  # BuilderFlag names to set (empty on 11)
    needs_qdq: bool  # the ONNX must carry QuantizeLinear/DequantizeLinear (int8, fp8)

    def describe(self) -> str:
        typing = "strongly typed" if self.strongly_typed else "weakly typed"
        flags = ", ".join(f"BuilderFlag.{f}" for f in self.flags) or "no precision flags"
        qdq = "; needs an explicitly quantized (Q/DQ) ONNX" if self.needs_qdq else ""
        return f"TensorRT {self.trt_major}: {typing}, {flags}, from the {self.onnx_dtype} ONNX{qdq}"


def recipe(precision: str, trt_major: int) -> BuildRecipe:
    """Pure: what the build of `precision` needs on TensorRT `trt_major`."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}'", hint="use one of " + ", ".join(PRECISIONS))
    if trt_major < 10:
        raise EnvironmentMissing(
            f"TensorRT {trt_major} is too old: llmops builds with TensorRT 10 or 11",
            hint="pip install 'llmops[tensorrt]'",
        )
    qdq = precision in ("int8", "fp8")
    if trt_major == 10:
        flags = {
            "fp32": (),
            "fp16": ("FP16",),
            "bf16": ("BF16",),
            # Q/DQ layers set the quantized types; FP16 lets the layers between them run in half precision.
            "int8": ("INT8", "FP16"),
            "fp8": ("FP8", "FP16"),
        }[precision]
        return BuildRecipe(10, precision, "float32", strongly_typed=False, flags=flags, needs_qdq=qdq)
    return BuildRecipe(
        trt_major, precision, ONNX_DTYPE[precision], strongly_typed=True, flags=(), needs_qdq=qdq
    )


def trt_version() -> str | None:
    """The installed TensorRT version: package metadata first (importing tensorrt loads CUDA libraries)."""
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu12", "tensorrt-cu11"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    if importlib.util.find_spec("tensorrt") is not None:  # e.g. NVIDIA containers install it without metadata
        try:
            import tensorrt

            return str(tensorrt.__version__)
        except (ImportError, OSError, AttributeError):
            return None
    return None


def major_of(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError as exc:
        raise EnvironmentMissing(f"cannot read the TensorRT version '{version}'") from exc


def tensorrt_llm_installed() -> bool:
    return importlib.util.find_spec("tensorrt_llm") is not None


TRTLLM_NOTE = (
    "TensorRT-LLM is installed: for generation with a KV cache and in-flight batching, serve the "
    "Hugging Face checkpoint with its PyTorch backend (`llmops serve MODEL --engine trtllm`, which runs "
    "`trtllm-serve CHECKPOINT`); `trtllm-build` was removed in TensorRT-LLM 1.3"
)


def require_tensorrt() -> tuple[str, int]:
    """(version, major) of the installed TensorRT, or exit 3 naming the extra and the GPU requirement."""
    version = trt_version()
    if version is None:
        raise MissingExtra("tensorrt", "tensorrt", purpose="building a TensorRT engine (needs an NVIDIA GPU)")
    return version, major_of(version)


def require_gpu() -> str:
    """The first NVIDIA GPU's name, or exit 3."""
    from llmops.doctor import gpus

    found = gpus()
    if not found:
        raise EnvironmentMissing(
            "building a TensorRT engine needs an NVIDIA GPU, and nvidia-smi finds none",
            hint="run on a GPU machine, or pass --onnx-only to stop after export and parity",
        )
    return found[0].name


@dataclass
class EngineReport:
    plan: str
    tensorrt_version: str
    gpu: str
    precision: str
    recipe: str
    onnx: str
    shapes: dict[str, list[int]]
    workspace_gib: float
    build_seconds: float
    engine_bytes: int
    io: list[dict[str, Any]]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def build_engine(
    onnx_path: Path,
    plan_path: Path,
    rec: BuildRecipe,
    profile: ShapeProfile,
    *,
    workspace_gib: float,
    gpu: str,
    version: str,
) -> EngineReport:
    """Parse the ONNX, set memory pool, profile and precision, build_serialized_network, write plan + JSON."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 is weakly typed unless asked; on 11 strong typing is always on and the flag is ignored.
    flags = (
        1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        if rec.strongly_typed and rec.trt_major == 10
        else 0
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # the file path form resolves external data beside it
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise OperationFailed(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 1024**3))
    for flag in rec.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    opt_profile = builder.create_optimization_profile()
    lo, mid, hi = profile.shapes()
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    for tensor in inputs:
        opt_profile.set_shape(tensor.name, lo, mid, hi)
    config.add_optimization_profile(opt_profile)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise OperationFailed(
            "TensorRT's build_serialized_network returned nothing (see the TensorRT log above)",
            hint="try a smaller --max-seq/--max-batch or a larger --workspace-gib",
        )
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    with plan_path.open("wb") as fh:
        fh.write(serialized)
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    io = [
        {
            "name": t.name,
            "kind": kind,
            "dtype": str(t.dtype).removeprefix("DataType."),
            "shape": list(t.shape),
        }
        for kind, group in (("input", inputs), ("output", outputs))
        for t in group
    ]
    report = EngineReport(
        plan=str(plan_path),
        tensorrt_version=version,
        gpu=gpu,
        precision=rec.precision,
        recipe=rec.describe(),
        onnx=str(onnx_path),
        shapes={"min": list(lo), "opt": list(mid), "max": list(hi)},
        workspace_gib=workspace_gib,
        build_seconds=round(seconds, 2),
        engine_bytes=plan_path.stat().st_size,
        io=io,
    )
    report.save(plan_path.with_suffix(".json"))
    return report


def quantize_qdq(onnx_path: Path, out_path: Path, mode: str, calibration: dict[str, Any]) -> Path:
    """int8/fp8: insert calibrated Q/DQ nodes with TensorRT Model Optimizer (explicit quantization)."""
    try:
        mq = importlib.import_module("modelopt.onnx.quantization")
    except ImportError as exc:
        raise EnvironmentMissing(
            f"{mode} engines need Q/DQ quantization by TensorRT Model Optimizer, which is not installed",
            hint="pip install 'nvidia-modelopt[onnx]'",
        ) from exc
    mq.quantize(
        onnx_path=str(onnx_path),
        quantize_mode=mode,
        calibration_data=calibration,
        output_path=str(out_path),
        use_external_data_format=(onnx_path.parent / f"{onnx_path.name}.data").exists(),
    )
    if not out_path.is_file():
        raise OperationFailed(f"ModelOpt wrote no {out_path}", hint=MODELOPT_HINT.format(mode=mode))
    return out_path
