"""`llmops quantize`: GPTQ or bitsandbytes, with a size and perplexity report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.options import DryRunOpt, JsonOpt, ModelArg, OutputOpt, VerboseOpt


def quantize(
    ctx: typer.Context,
    model: ModelArg = None,
    bits: Annotated[int | None, typer.Option("--bits", "-b", help="Weight bits: 4 or 8. Default 4.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="gptq (default) or bnb.")] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="gptq output: compressed-tensors (llm-compressor, default) or gptq (GPTQModel)."
        ),
    ] = None,
    group_size: Annotated[
        int | None,
        typer.Option(
            "--group-size",
            "-g",
            min=1,
            help="GPTQ group size. Default: the largest of 128, 64, 32, 16 that fits.",
        ),
    ] = None,
    calib: Annotated[
        Path | None, typer.Option("--calib", help="Calibration text or JSONL file. Default: built-in prose.")
    ] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", min=1, help="Calibration samples. Default 32.")
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option("--seq-len", min=1, help="Tokens per sample. Default 256.")
    ] = None,
    output: OutputOpt = None,
    evaluate: Annotated[
        bool | None,
        typer.Option(
            "--eval/--no-eval", help="Perplexity before and after (default: on).", show_default=False
        ),
    ] = None,
    eval_file: Annotated[
        Path | None,
        typer.Option("--eval-file", help="Held-out text for perplexity. Default: built-in prose."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
    json: JsonOpt = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Quantize a model to 4 or 8 bits and report size and perplexity before and after.

    Example: llmops quantize smollm2 --bits 4 --method gptq -o smollm2-w4a16
    """
    from llmops.quantize.plan import QuantizeFlags, make_plan
    from llmops.settings import pick
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json, verbose=verbose)
    ws = st.workspace()
    name = pick(model, workspace=ws.model, default=ws.default_model())
    flags = QuantizeFlags(method, bits, fmt, group_size, calib, samples, seq_len, output, evaluate, eval_file)
    plan = make_plan(st.catalog().model(name.value).profile, flags, ws.quantize)
    if dry_run:
        if st.json:
            print_json({"model": {"value": name.value, "origin": name.origin}, **plan.as_json()})
        else:
            rows = [("model", name.value, name.origin), *plan.rows()]
            out.print(
                table(f"llmops quantize (dry run): {plan.spec.label}", ["setting", "value", "from"], rows)
            )
        return
    from llmops.quantize.report import report_rows
    from llmops.quantize.run import run_quantize
    from llmops.ui import RichProgress, hint

    _stop_cleanly_on_sigterm()
    report = run_quantize(plan, force=force, verbose=st.verbose, progress=RichProgress())
    if st.json:
        print_json(report)
        return
    out.print(table("llmops quantize", ["", ""], report_rows(report)))
    hint(f"report: {Path(report.output) / 'llmops-quantize.json'}; next: {report.serve_command}")


def _stop_cleanly_on_sigterm() -> None:
    """A killed run (SIGTERM) unwinds like Ctrl-C, so the temporary output is removed, never left half."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
