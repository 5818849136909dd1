"""Run a quantize plan: checks first (extra, output, data, RAM), then checkpoint, baseline, quantize, report.

Everything that can be refused is refused before a model is loaded; the output appears only whole.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime
from pathlib import Path

from llmops.errors import UsageError
from llmops.progress import NullProgress, ProgressReporter
from llmops.quantize.memory import check_ram, estimate_params
from llmops.quantize.plan import EVAL_SEQ_LEN, QuantizePlan, require_architecture
from llmops.quantize.profile import output_profile, write_profile
from llmops.quantize.report import (
    CalibrationInfo,
    PerplexityInfo,
    QuantizeReport,
    Timings,
    peak_rss_bytes,
    relative_change,
    weights_bytes,
)
from llmops.quantize.texts import BUILTIN_CALIBRATION, BUILTIN_EVAL, TextSet, load_text_set, token_windows

LOAD_BYTES_PER_PARAM = {"gptq": 4.0, "bnb": 2.0}  # GPTQ calibrates in float32; bnb loads 16-bit weights


def run_quantize(
    plan: QuantizePlan,
    *,
    force: bool = False,
    verbose: bool = False,
    progress: ProgressReporter | None = None,
    cache_dir: Path | None = None,
) -> QuantizeReport:
    """Quantize the plan's model into plan.output and return the report (also written beside the weights)."""
    from llmops import __version__
    from llmops.output import check_output_dir, staged_dir

    progress = progress or NullProgress()
    started = time.monotonic()
    spec = plan.spec
    spec.require()
    check_output_dir(plan.output, force=force)
    calib = (
        load_text_set(plan.value("calib"), BUILTIN_CALIBRATION, "calibration") if spec.calibrated else None
    )
    evalset = (
        load_text_set(plan.value("eval_file"), BUILTIN_EVAL, "evaluation") if plan.value("eval") else None
    )
    arch = require_architecture(plan.model)
    check_ram(plan.model.name, estimate_params(arch), LOAD_BYTES_PER_PARAM[spec.method])

    from llmops.hf import load_tokenizer, materialize_checkpoint
    from llmops.quantize.registry import QUANTIZERS

    quantizer = QUANTIZERS.get(spec.key)

    checkpoint = materialize_checkpoint(plan.model, cache_dir=cache_dir, progress=progress)
    tokenizer = load_tokenizer(checkpoint)
    windows, calib_info = _calibration(calib, tokenizer, plan) if calib else (None, None)
    prepared = time.monotonic()

    before = None
    if evalset is not None:
        before = _perplexity(checkpoint, evalset, progress, "perplexity before")
    eval_before_done = time.monotonic()

    with staged_dir(plan.output, force=force, command="quantize") as tmp:
        facts = quantizer.quantize(
            checkpoint,
            tmp,
            bits=plan.bits,
            group_size=plan.group_size,
            calibration=windows,
            progress=progress,
            verbose=verbose,
        )
        gc.collect()
        quantized = time.monotonic()
        perplexity = None
        if evalset is not None and before is not None:
            after = _perplexity(tmp, evalset, progress, "perplexity after")
            perplexity = PerplexityInfo(
                eval_set=evalset.name,
                sha256=evalset.sha256,
                seq_len=before.seq_len,
                tokens=before.tokens,
                before=round(before.value, 4),
                after=round(after.value, 4),
                relative_change=round(relative_change(before.value, after.value), 4),
            )
        done = time.monotonic()
        report = QuantizeReport(
            llmops_version=__version__,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            model=plan.model.name,
            source=plan.model.source.describe(),
            checkpoint=str(checkpoint),
            output=str(plan.output),
            method=spec.method,
            format=spec.format,
            bits=plan.bits,
            scheme=plan.scheme,
            group_size=plan.group_size,
            ignored=list(facts.get("ignored", [])),
            details={k: v for k, v in facts.items() if k != "ignored" and isinstance(v, str | int | float)},
            device=str(facts.get("device") or _device()),
            calibration=calib_info,
            time=Timings(
                prepare_s=round(prepared - started, 2),
                eval_before_s=round(eval_before_done - prepared, 2),
                quantize_s=round(quantized - eval_before_done, 2),
                eval_after_s=round(done - quantized, 2),
                total_s=round(done - started, 2),
            ),
            peak_rss_bytes=peak_rss_bytes(),
            size_before_bytes=weights_bytes(checkpoint),
            size_after_bytes=weights_bytes(tmp),
            perplexity=perplexity,
            serve_command=f"llmops serve {plan.output}",
        )
        report.write(tmp)

    if plan.profile is not None:
        _write_profile(plan, report)
    return report


def _write_profile(plan: QuantizePlan, report: QuantizeReport) -> None:
    """The model profile for the output (see llmops.quantize.profile), and where it went, in the report."""
    target = plan.profile
    assert target is not None
    spec = plan.spec
    profile = output_profile(
        plan.model,
        plan.output,
        target.name,
        spec.serve_quantization[plan.bits],
        f"{plan.model.name} quantized by llmops: {spec.label} {plan.scheme}",
    )
    written = write_profile(target, profile, plan.output)
    if written is None:
        report.notes.append(f"no profile written: {target.path} appeared meanwhile and is not llmops's")
    else:
        report.profile, report.profile_name = str(written), target.name
        report.serve_command = f"llmops serve {target.name}"
        if target.note:
            report.notes.append(target.note)
    report.write(plan.output)


def _calibration(calib: TextSet, tokenizer, plan: QuantizePlan) -> tuple[list[list[int]], CalibrationInfo]:
    seq_len, samples = plan.value("seq_len"), plan.value("samples")
    ids = tokenizer(calib.text, add_special_tokens=False)["input_ids"]
    if len(ids) < seq_len:
        raise UsageError(
            f"calibration text {calib.name} has {len(ids)} tokens, fewer than --seq-len {seq_len}",
            hint=f"give more text, or --seq-len {max(16, len(ids) // 2)} or less",
        )
    windows = token_windows(ids, samples, seq_len)
    info = CalibrationInfo(
        name=calib.name,
        sha256=calib.sha256,
        documents=calib.documents,
        samples=len(windows),
        seq_len=seq_len,
        tokens=len(ids),
    )
    return windows, info


def _perplexity(path: Path, evalset: TextSet, progress: ProgressReporter, what: str):
    from llmops.hf import load_model, load_tokenizer, perplexity

    model = load_model(path, dtype="float32")
    tokenizer = load_tokenizer(path)
    try:
        return perplexity(
            model, tokenizer, evalset.text, seq_len=EVAL_SEQ_LEN, progress=_Named(progress, what)
        )
    except ValueError as exc:
        raise UsageError(f"evaluation text {evalset.name}: {exc}", hint="give a longer --eval-file") from exc
    finally:
        del model
        gc.collect()


class _Named:
    """Relabel a reporter's bar (perplexity before / after)."""

    def __init__(self, inner: ProgressReporter, description: str) -> None:
        self.inner, self.description = inner, description

    def start(self, total: float | None, description: str) -> None:
        self.inner.start(total, self.description)

    def update(self, advance: float = 1, **fields) -> None:
        self.inner.update(advance, **fields)

    def finish(self) -> None:
        self.inner.finish()


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
