"""`llmops trt build` end to end: export -> parity -> (Q/DQ) -> engine -> Triton repository.

Steps that the machine can run always run; the first missing requirement (TensorRT, a GPU, ModelOpt) stops
the build with exit 3 after the ONNX files and the parity report are written, so they are never wasted.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from llmops.errors import EnvironmentMissing, LlmopsError, OperationFailed, UsageError
from llmops.progress import NullProgress, ProgressReporter
from llmops.trt.engine import ONNX_DTYPE, TRTLLM_NOTE, BuildRecipe, ShapeProfile, recipe
from llmops.trt.parity import TOLERANCES

SUMMARY_FILE = "build.json"


@dataclass
class BuildRequest:
    model: str
    checkpoint: Path | None  # None only for --dry-run, which materializes nothing
    precision: str
    profile: ShapeProfile
    workspace_gib: float
    output: Path
    triton: bool = False
    onnx_only: bool = False
    force: bool = False


@dataclass
class BuildResult:
    model: str
    checkpoint: str
    precision: str
    output: str
    onnx: list[dict[str, Any]] = field(default_factory=list)
    parity: list[dict[str, Any]] = field(default_factory=list)
    engine: dict[str, Any] | None = None
    triton: str | None = None
    triton_problems: list[str] = field(default_factory=list)
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)
    error: LlmopsError | None = field(default=None, repr=False)

    def document(self) -> dict[str, Any]:
        # not asdict(): it deep-copies the exception, and LlmopsError subclasses cannot be rebuilt from args
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "error"}
        doc["ok"] = self.error is None
        return doc


def prepare_output(path: Path, force: bool) -> None:
    """Refuse a non-empty output folder unless --force (then its contents are replaced)."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"output {path} is a file", hint="give -o a folder")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise UsageError(
                f"output folder {path} is not empty",
                hint="choose another -o DIR, or pass --force to replace its contents",
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def needs_typed_onnx(precision: str, trt_major: int | None) -> bool:
    """fp16/bf16 need an ONNX exported at that dtype for strongly typed builds (TensorRT 11, or unknown)."""
    return precision in ("fp16", "bf16") and (trt_major is None or trt_major >= 11)


def calibration_inputs(tokenizer: Any) -> dict[str, Any]:
    import numpy as np

    from llmops.trt.parity import DEFAULT_PROMPTS

    batch = tokenizer(list(DEFAULT_PROMPTS), return_tensors="np", padding=True)
    return {
        "input_ids": batch["input_ids"].astype(np.int64),
        "attention_mask": batch["attention_mask"].astype(np.int64),
    }


def run_build(req: BuildRequest, progress: ProgressReporter | None = None) -> BuildResult:
    """Run every step the machine allows; result.error holds what stopped it (raise it after rendering)."""
    from llmops.trt import engine as eng
    from llmops.trt.export import export_onnx, load_causal_lm
    from llmops.trt.parity import check_parity, load_tokenizer

    if req.checkpoint is None:
        raise UsageError("no checkpoint to build from")
    progress = progress or NullProgress()
    result = BuildResult(
        model=req.model, checkpoint=str(req.checkpoint), precision=req.precision, output=str(req.output)
    )
    prepare_output(req.output, req.force)
    version = eng.trt_version()
    major = eng.major_of(version) if version else None
    if major is not None:
        recipe(req.precision, major)  # an impossible combination fails before the slow export
    if eng.tensorrt_llm_installed():
        result.notes.append(TRTLLM_NOTE)

    progress.start(None, "exporting to ONNX (float32)")
    tokenizer = load_tokenizer(req.checkpoint)
    model = load_causal_lm(req.checkpoint, "float32")
    exports = [export_onnx(model, req.output / "onnx" / "model.onnx", dtype="float32")]
    if needs_typed_onnx(req.precision, major):
        dtype = ONNX_DTYPE[req.precision]
        progress.update(0, step=f"exporting to ONNX ({dtype})")
        typed = load_causal_lm(req.checkpoint, dtype)
        exports.append(export_onnx(typed, req.output / f"onnx-{req.precision}" / "model.onnx", dtype=dtype))
        del typed
    result.onnx = [{**asdict(e), "path": str(e.path)} for e in exports]

    for exp in exports:
        progress.update(0, step=f"parity: PyTorch vs onnxruntime ({exp.dtype})")
        report = check_parity(model, exp.path, tokenizer, dtype=exp.dtype)
        result.parity.append(asdict(report))
        if report.passed is False:
            result.error = OperationFailed(
                f"parity check failed for {exp.path}: {report.verdict()}",
                hint="see parity in build.json; try fp32 or a different checkpoint",
            )
    del model
    build_onnx = exports[-1].path
    try:
        if result.error is None:
            build_onnx = _engine_steps(req, result, build_onnx, tokenizer, version, major, progress)
    except LlmopsError as exc:
        result.error = exc
    if isinstance(result.error, EnvironmentMissing):
        result.stopped = result.error.render()
    if req.triton and not isinstance(result.error, OperationFailed):
        _triton_step(req, result, build_onnx)
    progress.finish()
    (req.output / SUMMARY_FILE).write_text(json.dumps(result.document(), indent=2, default=str) + "\n")
    return result


def _engine_steps(
    req: BuildRequest,
    result: BuildResult,
    onnx_path: Path,
    tokenizer: Any,
    version: str | None,
    major: int | None,
    progress: ProgressReporter,
) -> Path:
    from llmops.trt import engine as eng
    from llmops.trt.export import has_qdq

    if req.onnx_only:
        result.notes.append("--onnx-only: stopped after export and parity")
        if req.precision in ("int8", "fp8"):
            return _qdq(req, onnx_path, tokenizer, progress)
        return onnx_path
    if version is None or major is None:
        raise eng.MissingExtra(
            "tensorrt", "tensorrt", purpose="building a TensorRT engine (with an NVIDIA GPU)"
        )
    gpu = eng.require_gpu()
    rec: BuildRecipe = recipe(req.precision, major)
    if rec.needs_qdq and not has_qdq(onnx_path):
        onnx_path = _qdq(req, onnx_path, tokenizer, progress)
    progress.update(0, step=f"building the TensorRT {version} engine ({req.precision})")
    report = eng.build_engine(
        onnx_path,
        req.output / "engine" / "model.plan",
        rec,
        req.profile,
        workspace_gib=req.workspace_gib,
        gpu=gpu,
        version=version,
    )
    result.engine = asdict(report)
    return onnx_path


def _qdq(req: BuildRequest, onnx_path: Path, tokenizer: Any, progress: ProgressReporter) -> Path:
    from llmops.trt.engine import quantize_qdq

    progress.update(0, step=f"{req.precision}: inserting Q/DQ nodes with ModelOpt")
    out = req.output / f"onnx-{req.precision}" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    return quantize_qdq(onnx_path, out, req.precision, calibration_inputs(tokenizer))


def _triton_step(req: BuildRequest, result: BuildResult, onnx_path: Path) -> None:
    from llmops.trt.triton import check_repository, write_repository

    root = req.output / "triton"
    plan = Path(result.engine["plan"]) if result.engine else None
    write_repository(
        root,
        engine_file=plan or onnx_path,
        onnx_for_signature=onnx_path,
        tokenizer_dir=req.checkpoint,
        max_batch=req.profile.max_batch,
        max_seq=req.profile.max_seq,
        platform="tensorrt_plan" if plan else "onnxruntime_onnx",
    )
    result.triton = str(root)
    result.triton_problems = check_repository(root)
    if not plan:
        result.notes.append(
            "Triton repository serves the ONNX file with onnxruntime (no engine was built); "
            "rebuild on a GPU machine with TensorRT for a tensorrt_plan model"
        )


def describe_plan(req: BuildRequest) -> dict[str, Any]:
    """What `run_build` would do, for --dry-run: nothing is loaded, exported or built."""
    from llmops.doctor import gpus
    from llmops.trt import engine as eng

    version = eng.trt_version()
    majors = [eng.major_of(version)] if version else [10, 11]
    recipes = {}
    for m in majors:
        try:
            recipes[f"tensorrt{m}"] = recipe(req.precision, m).describe()
        except LlmopsError as exc:
            recipes[f"tensorrt{m}"] = exc.render()
    gpu_list = [g.name for g in gpus()]
    dtypes = ["float32"]
    if needs_typed_onnx(req.precision, majors[0] if version else None):
        dtypes.append(ONNX_DTYPE[req.precision])
    steps = [f"export ONNX ({d})" for d in dtypes]
    for d in dtypes:
        tol = TOLERANCES[d]
        steps.append(
            f"parity PyTorch vs onnxruntime on the {d} ONNX (limits: max abs {tol.max_abs:g}, "
            f"greedy agreement {tol.min_agreement:.0%})"
        )
    qdq = f"{req.precision}: insert calibrated Q/DQ nodes with ModelOpt (nvidia-modelopt[onnx])"
    can_build = bool(version and gpu_list)
    if req.precision in ("int8", "fp8") and (req.onnx_only or can_build):
        steps.append(qdq)
    if req.onnx_only:
        steps.append("stop (--onnx-only)")
    elif not version or not gpu_list:
        missing = "TensorRT (pip install 'llmops[tensorrt]')" if not version else "an NVIDIA GPU"
        steps.append(f"stop with exit 3: {missing} is missing")
    else:
        steps.append(f"build engine with TensorRT {version} on {gpu_list[0]}")
    if req.triton:
        steps.append("write Triton repository (tokenizer, llm, postprocessor, ensemble)")
    return {
        "model": req.model,
        "checkpoint": str(req.checkpoint or "(materialized at run time)"),
        "output": str(req.output),
        "precision": req.precision,
        "shapes": req.profile.model_dump(),
        "workspace_gib": req.workspace_gib,
        "tensorrt": version,
        "gpus": gpu_list,
        "recipes": recipes,
        "steps": steps,
    }
