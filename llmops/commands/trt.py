"""`llmops trt build`: ONNX export, parity check, TensorRT engine and Triton model repository."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops.context import state
from llmops.options import DryRunOpt, JsonOpt, ModelArg, OutputOpt, VerboseOpt

app = typer.Typer(help="Build TensorRT engines and Triton model repositories.", no_args_is_help=True)

PrecisionOpt = Annotated[
    str | None, typer.Option("--precision", help="fp32, fp16, bf16, fp8 or int8 (default fp16).")
]


@app.command("build")
def build(
    ctx: typer.Context,
    model: ModelArg = None,
    precision: PrecisionOpt = None,
    min_batch: Annotated[
        int | None, typer.Option("--min-batch", min=1, help="Smallest batch (default 1).")
    ] = None,
    opt_batch: Annotated[
        int | None, typer.Option("--opt-batch", min=1, help="Batch to tune for (default 1).")
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option("--max-batch", min=1, help="Largest batch (default 8).")
    ] = None,
    min_seq: Annotated[
        int | None, typer.Option("--min-seq", min=1, help="Shortest sequence (default 1).")
    ] = None,
    opt_seq: Annotated[
        int | None, typer.Option("--opt-seq", min=1, help="Sequence to tune for (default 128).")
    ] = None,
    max_seq: Annotated[
        int | None, typer.Option("--max-seq", min=1, help="Longest sequence (default 512).")
    ] = None,
    workspace_gib: Annotated[
        float | None,
        typer.Option("--workspace-gib", min=0.01, help="TensorRT workspace memory pool (default 4)."),
    ] = None,
    output: OutputOpt = None,
    triton: Annotated[
        bool | None,
        typer.Option(
            "--triton/--no-triton", help="Also write a Triton model repository.", show_default=False
        ),
    ] = None,
    onnx_only: Annotated[
        bool, typer.Option("--onnx-only", help="Stop after ONNX export and parity.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the contents of a non-empty output folder.")
    ] = False,
    json: JsonOpt = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export to ONNX, check parity with PyTorch, build a TensorRT engine, optionally a Triton repository.

    Without TensorRT or a GPU, export and parity still run, then exit 3.

    Example: llmops trt build smollm2 --onnx-only --triton
    """
    from llmops.trt.request import resolve_request

    st = state(ctx, json=json, verbose=verbose)
    req, origins = resolve_request(
        st.catalog(),
        st.workspace(),
        model=model,
        precision=precision,
        output=output,
        triton=triton,
        onnx_only=onnx_only,
        force=force,
        workspace_gib=workspace_gib,
        shapes=dict(
            min_batch=min_batch,
            opt_batch=opt_batch,
            max_batch=max_batch,
            min_seq=min_seq,
            opt_seq=opt_seq,
            max_seq=max_seq,
        ),
        materialize=not dry_run,
    )
    from llmops.ui import print_json

    if dry_run:
        from llmops.trt.pipeline import describe_plan

        plan = {**describe_plan(req), "origins": origins}
        if st.json:
            print_json(plan)
        else:
            _render_plan(plan)
        return
    from llmops.trt.pipeline import run_build
    from llmops.ui import RichProgress

    result = run_build(req, progress=None if st.json else RichProgress())
    if st.json:
        print_json(result.document())
    else:
        _render_result(result)
    if result.error is not None:
        raise result.error


def _render_plan(plan: dict) -> None:
    from rich.markup import escape

    from llmops.ui import out

    for key in ("model", "checkpoint", "precision", "workspace_gib", "output", "tensorrt"):
        out.print(
            f"{key}: {escape(str(plan[key]))}  [dim]({plan['origins'].get(key, 'resolved')})[/dim]",
            highlight=False,
        )
    out.print(f"shapes: {plan['shapes']}  [dim]({plan['origins']['shapes']})[/dim]", highlight=False)
    out.print(f"GPUs: {', '.join(plan['gpus']) or 'none'}", highlight=False)
    for major, text in plan["recipes"].items():
        out.print(f"{major}: {text}", highlight=False, markup=False)
    for i, step in enumerate(plan["steps"], 1):
        out.print(f"{i}. {step}", highlight=False, markup=False)


def _render_result(result) -> None:
    from llmops.trt.parity import ParityReport
    from llmops.ui import err, out

    for exp in result.onnx:
        out.print(
            f"ONNX ({exp['dtype']}): {exp['path']}  {exp['size_bytes'] / 1e6:.1f} MB, exported in "
            f"{exp['seconds']:.1f} s, onnx.checker ok",
            highlight=False,
        )
    for par in result.parity:
        report = ParityReport(**{k: v for k, v in par.items() if k != "tolerance"})
        from llmops.trt.parity import TOLERANCES

        report.tolerance = TOLERANCES[report.dtype]
        state_word = "ok" if report.passed else ("skipped" if report.skipped else "FAILED")
        out.print(f"parity ({report.dtype}) {state_word}: {report.verdict()}", highlight=False)
    if result.engine:
        eng = result.engine
        out.print(
            f"engine: {eng['plan']}  {eng['engine_bytes'] / 1e6:.1f} MB, TensorRT {eng['tensorrt_version']} "
            f"on {eng['gpu']}, built in {eng['build_seconds']:.1f} s",
            highlight=False,
        )
    if result.triton:
        verdict = "consistent" if not result.triton_problems else "; ".join(result.triton_problems)
        out.print(f"Triton repository: {result.triton} ({verdict})", highlight=False)
    for note in result.notes:
        err.print(f"note: {note}", highlight=False, markup=False)
