"""`llmops trt build` end to end: export -> parity -> (Q/DQ) -> engine -> Triton repository.

Steps that the machine can run always run; the first missing requirement (TensorRT, a GPU, ModelOpt) stops
the build with exit 3 after the ONNX files and the parity report are written, so they are never wasted.
The output folder is staged (`llmops.output.staged_dir`): nothing at `-o` changes until the build ends.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from llmops.errors import EnvironmentMissing, LlmopsError, OperationFailed
from llmops.progress import NullProgress, ProgressReporter
from llmops.trt.engine import ONNX_DTYPE, TRTLLM_NOTE, BuildRecipe, ShapeProfile, recipe
from llmops.trt.parity import TOLERANCES

SUMMARY_FILE = "build.json"


@dataclass
class BuildRequest:
    model: str
    source: Any  # the ModelProfile; its checkpoint is materialized by run_build, after the output checks
    checkpoint: Path | None  # None until materialized (--dry-run never does)
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
    kept: bool = True  # False: the build did not finish and an earlier output was kept instead
    error: LlmopsError | None = field(default=None, repr=False)

    def document(self) -> dict[str, Any]:
        # not asdict(): it deep-copies the exception, and LlmopsError subclasses cannot be rebuilt from args
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "error"}
        doc["ok"] = self.error is None
        return doc


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


class _KeepEarlier(Exception):
    """An unfinished build must not replace an earlier output: leave the staged block without swapping."""


@dataclass
class _Work:
    """Where this run writes (a staged sibling of the output) and how its paths read once swapped in."""

    folder: Path
    output: Path

    def final(self, path: Path | str) -> str:
        """A path under the staging folder as it will be under the output folder."""
        path = Path(path)
        return (
            str(self.output / path.relative_to(self.folder))
            if path.is_relative_to(self.folder)
            else str(path)
        )


def run_build(
    req: BuildRequest, progress: ProgressReporter | None = None, *, verbose: bool = False
) -> BuildResult:
    """Run every step the machine allows; result.error holds what stopped it (raise it after rendering).

    Everything is written to a staged sibling folder that replaces `req.output` only at the end. A failed,
    stopped (exit 3) or interrupted build never touches an earlier output there: it is kept unchanged and
    this run's files are discarded. Into a new or empty folder a stopped build is kept, so the export and
    the parity report are not wasted.
    """
    from llmops.hf.checkpoint import materialize_checkpoint
    from llmops.hf.loading import quiet_libraries
    from llmops.output import check_output_dir, staged_dir

    check_output_dir(req.output, force=req.force)  # before any work, even a GGUF conversion
    quiet_libraries(verbose)  # transformers' progress bars and advice only with -v
    progress = progress or NullProgress()
    if req.checkpoint is None:
        req.checkpoint = materialize_checkpoint(req.source, progress=progress)
    earlier = req.output.is_dir() and any(req.output.iterdir())
    result = BuildResult(
        model=req.model, checkpoint=str(req.checkpoint), precision=req.precision, output=str(req.output)
    )
    try:
        with staged_dir(req.output, force=req.force, command="trt build") as folder:
            _build(req, _Work(folder, req.output), result, progress)
            if result.error is not None and earlier:
                raise _KeepEarlier
    except _KeepEarlier:
        result.kept = False
        result.notes.append(
            f"the build did not finish, so the earlier output in {req.output} is kept unchanged and this "
            "run's files were discarded; build into a new -o folder to keep a partial build"
        )
    finally:
        progress.finish()
    return result


def _build(req: BuildRequest, work: _Work, result: BuildResult, progress: ProgressReporter) -> None:
    from llmops.hf.loading import load_tokenizer
    from llmops.trt import engine as eng
    from llmops.trt.export import export_onnx, load_for_export
    from llmops.trt.parity import check_parity

    assert req.checkpoint is not None
    version = eng.trt_version()
    major = eng.major_of(version) if version else None
    if major is not None:
        recipe(req.precision, major)  # an impossible combination fails before the slow export
    if eng.tensorrt_llm_installed():
        result.notes.append(TRTLLM_NOTE)

    progress.start(None, "exporting to ONNX (float32)")
    tokenizer = load_tokenizer(req.checkpoint, padding_side="right", extra="onnx")
    model = load_for_export(req.checkpoint, "float32")
    exports = [export_onnx(model, work.folder / "onnx" / "model.onnx", dtype="float32")]
    if needs_typed_onnx(req.precision, major):
        dtype = ONNX_DTYPE[req.precision]
        progress.update(0, step=f"exporting to ONNX ({dtype})")
        typed = load_for_export(req.checkpoint, dtype)
        exports.append(export_onnx(typed, work.folder / f"onnx-{req.precision}" / "model.onnx", dtype=dtype))
        del typed
    result.onnx = [{**asdict(e), "path": work.final(e.path)} for e in exports]

    for exp in exports:
        progress.update(0, step=f"parity: PyTorch vs onnxruntime ({exp.dtype})")
        report = check_parity(model, exp.path, tokenizer, dtype=exp.dtype)
        result.parity.append({**asdict(report), "onnx": work.final(report.onnx)})
        if report.passed is False:
            result.error = OperationFailed(
                f"parity check failed for {work.final(exp.path)}: {report.verdict()}",
                hint="see parity in build.json; try fp32 or a different checkpoint",
            )
    del model
    build_onnx = exports[-1].path
    engine_plan: Path | None = None
    try:
        if result.error is None:
            build_onnx, engine_plan = _engine_steps(
                req, work, result, build_onnx, tokenizer, version, major, progress
            )
    except LlmopsError as exc:
        result.error = exc
    if isinstance(result.error, EnvironmentMissing):
        result.stopped = result.error.render()
    if req.triton and not isinstance(result.error, OperationFailed):
        _triton_step(req, work, result, build_onnx, engine_plan)
    (work.folder / SUMMARY_FILE).write_text(json.dumps(result.document(), indent=2, default=str) + "\n")


def _engine_steps(
    req: BuildRequest,
    work: _Work,
    result: BuildResult,
    onnx_path: Path,
    tokenizer: Any,
    version: str | None,
    major: int | None,
    progress: ProgressReporter,
) -> tuple[Path, Path | None]:
    """(the ONNX the engine was built from, the engine file or None)."""
    from llmops.trt import engine as eng
    from llmops.trt.export import has_qdq

    if req.onnx_only:
        result.notes.append("--onnx-only: stopped after export and parity")
        if req.precision in ("int8", "fp8"):
            return _qdq(req, work, onnx_path, tokenizer, progress), None
        return onnx_path, None
    if version is None or major is None:
        version, major = eng.require_tensorrt()  # exit 3 naming the extra
    gpu = eng.require_gpu()
    rec: BuildRecipe = recipe(req.precision, major)
    if rec.needs_qdq and not has_qdq(onnx_path):
        onnx_path = _qdq(req, work, onnx_path, tokenizer, progress)
    progress.update(0, step=f"building the TensorRT {version} engine ({req.precision})")
    plan = work.folder / "engine" / "model.plan"
    report = eng.build_engine(
        onnx_path, plan, rec, req.profile, workspace_gib=req.workspace_gib, gpu=gpu, version=version
    )
    report.plan, report.onnx = work.final(report.plan), work.final(report.onnx)
    report.save(plan.with_suffix(".json"))  # with the paths the files have once the output is in place
    result.engine = asdict(report)
    return onnx_path, plan


def _qdq(req: BuildRequest, work: _Work, onnx_path: Path, tokenizer: Any, progress: ProgressReporter) -> Path:
    from llmops.trt.engine import quantize_qdq

    progress.update(0, step=f"{req.precision}: inserting Q/DQ nodes with ModelOpt")
    out = work.folder / f"onnx-{req.precision}" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    return quantize_qdq(onnx_path, out, req.precision, calibration_inputs(tokenizer))


def _triton_step(
    req: BuildRequest, work: _Work, result: BuildResult, onnx_path: Path, plan: Path | None
) -> None:
    from llmops.trt.triton import check_repository, write_repository

    root = work.folder / "triton"
    assert req.checkpoint is not None
    write_repository(
        root,
        engine_file=plan or onnx_path,
        onnx_for_signature=onnx_path,
        tokenizer_dir=req.checkpoint,
        max_batch=req.profile.max_batch,
        max_seq=req.profile.max_seq,
        platform="tensorrt_plan" if plan else "onnxruntime_onnx",
    )
    result.triton = work.final(root)
    result.triton_problems = check_repository(root)
    if not plan:
        result.notes.append(
            "Triton repository serves the ONNX file with onnxruntime (no engine was built); "
            "rebuild on a GPU machine with TensorRT for a tensorrt_plan model"
        )


def describe_plan(req: BuildRequest) -> dict[str, Any]:
    """The facts --dry-run shows besides the settings: nothing is loaded, exported or built."""
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
        "checkpoint": str(req.checkpoint or "(materialized at run time)"),
        "tensorrt": version,
        "gpus": gpu_list,
        "recipes": recipes,
        "steps": steps,
    }
