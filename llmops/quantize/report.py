"""`llmops-quantize.json`: what was done, with what data, at what cost, and its effect on quality and size."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from llmops.profiles.schema import StrictModel

REPORT_FILE = "llmops-quantize.json"


class CalibrationInfo(StrictModel):
    name: str = Field(description="file path, or builtin:calibration")
    sha256: str
    documents: int
    samples: int = Field(description="windows actually used")
    seq_len: int
    tokens: int = Field(description="tokens in the calibration text")


class PerplexityInfo(StrictModel):
    eval_set: str
    sha256: str
    seq_len: int
    tokens: int = Field(description="predicted tokens")
    before: float
    after: float
    relative_change: float = Field(description="(after - before) / before")


class Timings(StrictModel):
    prepare_s: float = Field(description="checkpoint (GGUF conversion on first use) and calibration data")
    eval_before_s: float = 0.0
    quantize_s: float
    eval_after_s: float = 0.0
    total_s: float


class QuantizeReport(StrictModel):
    llmops_version: str
    created: str
    model: str
    source: str
    checkpoint: str = Field(description="the 16-bit Hugging Face checkpoint that was quantized")
    output: str
    method: str
    format: str
    bits: int
    scheme: str
    group_size: int | None = Field(description="None: per-channel scales, or not applicable (bitsandbytes)")
    ignored: list[str] = Field(default_factory=list, description="modules kept in 16-bit")
    details: dict[str, str | int | float] = Field(default_factory=dict)
    device: str
    calibration: CalibrationInfo | None = None
    time: Timings
    peak_rss_bytes: int = Field(description="peak resident memory of the llmops process")
    size_before_bytes: int = Field(description="weight files of the 16-bit checkpoint")
    size_after_bytes: int = Field(description="weight files of the output")
    perplexity: PerplexityInfo | None = None
    profile: str | None = Field(default=None, description="the model profile file written for the output")
    profile_name: str | None = Field(default=None, description="its name: `llmops serve NAME`")
    notes: list[str] = Field(default_factory=list, description="what a user should know (profile naming)")
    serve_command: str

    @property
    def size_ratio(self) -> float:
        return self.size_after_bytes / self.size_before_bytes if self.size_before_bytes else 0.0

    def write(self, directory: Path) -> Path:
        path = directory / REPORT_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def relative_change(before: float, after: float) -> float:
    return (after - before) / before


def weights_bytes(directory: Path) -> int:
    """Bytes of the weight files (*.safetensors, *.bin) in a checkpoint directory."""
    return sum(
        p.stat().st_size for p in directory.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin")
    )


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def report_rows(report: QuantizeReport) -> list[tuple[str, str]]:
    """(field, value) rows for people; the JSON file has everything."""
    rows = [
        ("model", f"{report.model} ({report.source})"),
        ("method", f"{report.method} -> {report.format}, {report.scheme}, {report.bits}-bit"),
        (
            "group size",
            str(report.group_size)
            if report.group_size
            else "n/a"
            if report.method == "bnb"
            else "per-channel",
        ),
        ("kept in 16-bit", ", ".join(report.ignored) or "-"),
        ("device", report.device),
    ]
    if report.calibration:
        c = report.calibration
        rows.append(("calibration", f"{c.name}: {c.samples} x {c.seq_len} tokens, sha256 {c.sha256[:12]}"))
    rows += [
        ("time", f"{report.time.total_s:.1f} s (quantize {report.time.quantize_s:.1f} s)"),
        ("peak RSS", _mb(report.peak_rss_bytes)),
        (
            "size",
            f"{_mb(report.size_before_bytes)} -> {_mb(report.size_after_bytes)} ({report.size_ratio:.2f}x)",
        ),
    ]
    if report.perplexity:
        p = report.perplexity
        rows.append(
            (
                "perplexity",
                f"{p.before:.2f} -> {p.after:.2f} ({p.relative_change:+.1%}) on {p.eval_set}, "
                f"{p.tokens} tokens",
            )
        )
    profile = f"{report.profile_name} ({report.profile})" if report.profile else "-"
    rows += [("output", report.output), ("profile", profile), ("serve", report.serve_command)]
    return rows
