"""`llmops quantize`: GPTQ or bitsandbytes, with a size and perplexity report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.options import DryRunOpt, ForceOpt, JsonOpt, ModelArg, OutputOpt, VerboseOpt


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
    profile: Annotated[
        bool | None,
        typer.Option(
            "--profile/--no-profile",
            help="Write a model profile for the output, so `llmops serve NAME` finds it (default: on).",
            show_default=False,
        ),
    ] = None,
    force: ForceOpt = False,
    json: JsonOpt = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Quantize a model to 4 or 8 bits and report size and perplexity before and after.

    The output appears whole or not at all; its model profile never shadows or overwrites another one.

    Example: llmops quantize smollm2 --bits 4 --method gptq -o smollm2-w4a16
    """
    from llmops.quantize import QuantizeFlags, plan_quantize
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json, verbose=verbose)
    flags = QuantizeFlags(
        method=method,
        bits=bits,
        format=fmt,
        group_size=group_size,
        calib=calib,
        samples=samples,
        seq_len=seq_len,
        output=output,
        eval=evaluate,
        eval_file=eval_file,
        profile=profile,
    )
    plan = plan_quantize(st.catalog(), st.workspace(), model, flags)
    if dry_run:
        from llmops.settings import dry_run_document

        if st.json:
            print_json(dry_run_document("quantize", plan.settings, **plan.facts()))
        else:
            out.print(
                table(
                    f"llmops quantize (dry run): {plan.spec.label}", ["setting", "value", "from"], plan.rows()
                )
            )
            _say_profile(plan.facts())
        return
    from llmops.commands._signals import sigterm_unwinds
    from llmops.quantize import report_rows, run_quantize
    from llmops.ui import RichProgress, hint

    sigterm_unwinds()
    report = run_quantize(plan, force=force, verbose=st.verbose, progress=RichProgress())
    if st.json:
        print_json(report)
        return
    out.print(table("llmops quantize", ["", ""], report_rows(report)))
    for note in report.notes:
        hint(f"note: {note}")
    where = f"; profile '{report.profile_name}' written to {report.profile}" if report.profile else ""
    hint(f"report: {Path(report.output) / 'llmops-quantize.json'}{where}; next: {report.serve_command}")


def _say_profile(facts: dict) -> None:
    from llmops.ui import hint

    if facts["profile_name"]:
        hint(f"a model profile '{facts['profile_name']}' would be written to {facts['profile_path']}")
    for note in facts["notes"]:
        hint(f"note: {note}")
