"""The result file (`-o result.json`, `--json`): every figure under vLLM's key names, config, environment."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, create_model

from llmops.bench.metrics import LATENCIES, STATS
from llmops.bench.prom import ServerMetrics
from llmops.bench.slo import Check
from llmops.errors import UsageError
from llmops.profiles.schema import StrictModel

FORMAT = "llmops.bench/1"
TokenSource = Literal["usage", "tokenizer", "chunks"]


class BenchConfig(StrictModel):
    """Everything that decides what a run does; `origins` says where each value came from."""

    target: str
    model: str
    endpoint: Literal["chat", "completions", "anthropic"] = "chat"
    dataset: str = "random"
    input_len: int = 128
    output_len: int | None = None
    prefix_len: int = 0
    num_prompts: int = 100
    duration: float | None = None
    request_rate: float | Literal["inf"] = "inf"
    burstiness: float = 1.0
    max_concurrency: int | None = None
    sweep: list[float] | None = None
    sweep_of: Literal["concurrency", "rate"] | None = None
    warmup: int = 1
    seed: int = 0
    timeout_s: float = 300.0
    ignore_eos: bool = True
    sampling: dict[str, Any] = Field(default_factory=dict)
    slos: dict[str, float] = Field(default_factory=dict)
    baseline: str | None = None
    max_regression: float | None = None
    provider: str | None = None
    model_profile: str | None = None
    served_by_llmops: bool = False
    origins: dict[str, str] = Field(default_factory=dict)

    @property
    def rate(self) -> float:
        return math.inf if self.request_rate == "inf" else float(self.request_rate)


class Environment(StrictModel):
    llmops: str
    python: str
    platform: str
    cpu_count: int | None
    event_loop: str
    client: str
    started_at: str


class _RunBase(StrictModel):
    load: str = Field(description="the load point: concurrency and request rate")
    max_concurrency: int | None = None
    request_rate: float | Literal["inf"] = "inf"
    completed: int
    failed: int
    error_rate: float
    errors: dict[str, int] = Field(default_factory=dict)
    duration: float
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float
    request_goodput: float
    output_throughput: float
    total_token_throughput: float
    mean_input_tokens: float | None = None
    mean_output_tokens: float | None = None
    mean_schedule_lag_ms: float | None = None
    max_schedule_lag_ms: float | None = None
    connections_opened: int = 0
    # the share of this machine's CPU time the hypervisor took during the run (/proc/stat steal; None off
    # Linux): it stalls client and server alike, so tails measured under it are partly the host's
    host_steal_share: float | None = None
    output_tokens_from: TokenSource = "usage"
    input_tokens_from: Literal["usage", "tokenizer", "estimate"] = "usage"
    cost_per_1k_requests: float | None = None
    cost_note: str | None = None
    server_metrics: ServerMetrics | None = None
    error_examples: dict[str, str] = Field(default_factory=dict)


RunMetrics = create_model(  # the latency figures: mean_ttft_ms ... max_e2el_ms
    "RunMetrics",
    __base__=_RunBase,
    **{f"{s}_{m}_ms": (float | None, None) for m in LATENCIES for s in STATS},  # type: ignore[call-overload]
)


class BenchResult(RunMetrics):  # type: ignore[misc,valid-type]
    """A whole bench: the top-level figures are the run's (for a sweep, its last point's)."""

    format: Literal["llmops.bench/1"] = FORMAT
    config: BenchConfig
    environment: Environment
    definitions: dict[str, str]
    sweep: list[RunMetrics] | None = None  # type: ignore[valid-type]
    slo_checks: list[Check] = Field(default_factory=list)
    baseline_checks: list[Check] = Field(default_factory=list)
    passed: bool = True
    verdict: str = ""


def load_figures(path: Path) -> dict[str, Any]:
    """An earlier result's figures (ours or vLLM's benchmark JSON) for --baseline."""
    if not path.is_file():
        raise UsageError(f"baseline file {path} not found", hint="pass a result written earlier with -o")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: baseline is not UTF-8 text (byte {exc.start})",
            hint="pass a result written by `llmops bench -o`",
        ) from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}: baseline is not JSON ({exc.msg})",
            hint="pass a result written by `llmops bench -o`",
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: baseline is not a JSON object", hint="pass a result written by `llmops bench -o`"
        )
    if data.get("format") == FORMAT:
        try:
            BenchResult.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(
                f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}",
                hint="the baseline must be an unmodified `llmops bench -o` result",
            ) from exc
    return data


def baseline_figures(path: Path) -> dict[str, float]:
    """The figures a --baseline comparison reads, checked before the run: a baseline that compares
    nothing (`{}`) or holds a non-number would silently disable the CI gate, or crash after the run."""
    from llmops.bench.slo import BASELINE_KEYS

    data = load_figures(path)
    figures: dict[str, float] = {}
    for key in BASELINE_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UsageError(
                f"{path}: {key} is {value!r}, not a number",
                hint="the baseline must be a result written by `llmops bench -o` (or vLLM's benchmark JSON)",
            )
        figures[key] = float(value)
    if not figures:
        raise UsageError(
            f"{path}: the baseline has none of the figures a comparison reads ({', '.join(BASELINE_KEYS[:3])}, ...)",
            hint="pass a result written by `llmops bench -o`; an empty baseline would compare nothing",
        )
    return figures
