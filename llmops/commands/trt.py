"""`llmops trt build`: ONNX export, parity check, TensorRT engine and Triton model repository."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops.context import state
from llmops.options import DryRunOpt, ForceOpt, JsonOpt, ModelArg, OutputOpt, VerboseOpt

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
    force: ForceOpt = False,
    json: JsonOpt = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export to ONNX, check parity with PyTorch, build a TensorRT engine, optionally a Triton repository.

    Without TensorRT or a GPU, export and parity still run, then exit 3.

    Nothing at -o changes until the build ends; a failed or interrupted build leaves an earlier output as it was.

    Example: llmops trt build smollm2 --onnx-only --triton -o build/smollm2
    """
    from llmops.trt import resolve_request

    st = state(ctx, json=json, verbose=verbose)
    req, resolved = resolve_request(
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
    )
    from llmops.ui import print_json

    if dry_run:
        from llmops.settings import dry_run_document
        from llmops.trt import describe_plan

        doc = dry_run_document("trt build", resolved, **describe_plan(req))
        if st.json:
            print_json(doc)
        else:
            _render_plan(doc, resolved)
        return
    from llmops.commands._signals import sigterm_unwinds
    from llmops.trt import run_build
    from llmops.ui import RichProgress

    sigterm_unwinds()
    result = run_build(req, progress=None if st.json else RichProgress(), verbose=st.verbose)
    if st.json:
        print_json(result.document())
    else:
        _render_result(result)
    if result.error is not None:
        raise result.error


def _render_plan(doc: dict, resolved) -> None:
    from llmops.ui import out, table

    out.print(table("llmops trt build (dry run)", ["setting", "value", "from"], resolved.rows()))
    out.print(f"checkpoint: {doc['checkpoint']}", highlight=False, markup=False)
    out.print(f"TensorRT: {doc['tensorrt'] or 'not installed'}", highlight=False, markup=False)
    out.print(f"GPUs: {', '.join(doc['gpus']) or 'none'}", highlight=False, markup=False)
    for major, text in doc["recipes"].items():
        out.print(f"{major}: {text}", highlight=False, markup=False)
    for i, step in enumerate(doc["steps"], 1):
        out.print(f"{i}. {step}", highlight=False, markup=False)


def _render_result(result) -> None:
    from llmops.trt import TOLERANCES, ParityReport
    from llmops.ui import err, out

    for exp in result.onnx:
        out.print(
            f"ONNX ({exp['dtype']}): {exp['path']}  {exp['size_bytes'] / 1e6:.1f} MB, exported in "
            f"{exp['seconds']:.1f} s, onnx.checker ok",
            highlight=False,
            markup=False,
        )
    for par in result.parity:
        report = ParityReport(**{k: v for k, v in par.items() if k != "tolerance"})
        report.tolerance = TOLERANCES[report.dtype]
        state_word = "ok" if report.passed else ("skipped" if report.skipped else "FAILED")
        out.print(f"parity ({report.dtype}) {state_word}: {report.verdict()}", highlight=False, markup=False)
    if result.engine:
        eng = result.engine
        out.print(
            f"engine: {eng['plan']}  {eng['engine_bytes'] / 1e6:.1f} MB, TensorRT {eng['tensorrt_version']} "
            f"on {eng['gpu']}, built in {eng['build_seconds']:.1f} s",
            highlight=False,
            markup=False,
        )
    if result.triton:
        verdict = "consistent" if not result.triton_problems else "; ".join(result.triton_problems)
        out.print(f"Triton repository: {result.triton} ({verdict})", highlight=False, markup=False)
    for note in result.notes:
        err.print(f"note: {note}", highlight=False, markup=False)
