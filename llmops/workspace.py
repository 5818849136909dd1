"""The workspace file, `llmops.yaml`: a repository's defaults so CI lines stay short.

Each command group owns one section. Precedence everywhere: flags > environment (`LLMOPS_*`) > workspace >
profile > defaults.

This module is part of the base layer (see tests/core/test_layers.py): it never imports a capability
package. A section whose schema belongs to one (`gateway:`, owned by `llmops.gateway.config`) is kept
here as the file wrote it and validated by its owner through `owned_section`, with the same file:line
problems as the sections below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, PrivateAttr, ValidationError

from llmops.errors import ProfileProblems
from llmops.profiles.schema import StrictModel, settings_model
from llmops.profiles.serving import SETTINGS
from llmops.profiles.yamlsrc import SourceDoc, load_yaml, problems_from_validation

M = TypeVar("M", bound=BaseModel)

WORKSPACE_FILE = "llmops.yaml"
DEFAULT_MODEL = "smollm2"
DEFAULT_NODE = "local-cpu"


# Every serving setting (llmops/profiles/serving.py) may be set here; None = not set.
ServeSection = settings_model(
    "ServeSection",
    SETTINGS,
    defaults=False,
    doc="`serve:` in llmops.yaml: defaults for `serve` and `plan` (any serving setting).",
)


class BenchSection(StrictModel):
    target: str | None = Field(
        default=None, description="OpenAI-compatible base URL; else llmops serves the model"
    )
    model: str | None = Field(default=None, description="model name sent in requests")
    endpoint: Literal["chat", "completions", "anthropic"] | None = None
    dataset: str | None = None
    input_len: PositiveInt | None = None
    output_len: PositiveInt | None = None
    prefix_len: int | None = None
    num_prompts: PositiveInt | None = None
    duration: float | None = None
    request_rate: float | str | None = None
    burstiness: float | None = None
    max_concurrency: PositiveInt | None = None
    warmup: int | None = None
    seed: int | None = None
    slos: dict[str, float] = Field(default_factory=dict, description="e.g. ttft_p99_ms: 500")
    baseline: str | None = None
    max_regression: float | None = None


class BatchSection(StrictModel):
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    concurrency: PositiveInt | None = None
    timeout: PositiveFloat | None = Field(default=None, description="per-request timeout, seconds (local)")
    max_retries: int | None = Field(default=None, ge=0)
    backoff: float | None = Field(default=None, ge=0, description="first retry delay, seconds")
    endpoint_wait: float | None = Field(
        ge=0, default=None, description="seconds to wait for a local endpoint that refuses connections"
    )


class QuantizeSection(StrictModel):
    method: Literal["gptq", "bnb"] | None = None
    bits: Literal[4, 8] | None = None
    format: Literal["compressed-tensors", "gptq", "bitsandbytes"] | None = Field(
        default=None, description="gptq output: compressed-tensors (llm-compressor) or gptq (GPTQModel)"
    )
    group_size: PositiveInt | None = None
    calib: str | None = Field(default=None, description="calibration text or JSONL file")
    samples: PositiveInt | None = None
    seq_len: PositiveInt | None = None
    output: str | None = None
    eval: bool | None = Field(default=None, description="measure perplexity before and after")
    eval_file: str | None = Field(default=None, description="held-out text for the perplexity")
    profile: bool | None = Field(
        default=None, description="write a model profile for the output (default true)"
    )


class TrtSection(StrictModel):
    precision: Literal["fp32", "fp16", "bf16", "fp8", "int8"] | None = None
    output: str | None = Field(default=None, description="output folder of `llmops trt build`")
    triton: bool | None = Field(default=None, description="also write a Triton model repository")
    workspace_gib: PositiveFloat | None = Field(default=None, description="TensorRT workspace memory pool")
    max_batch: PositiveInt | None = None
    max_seq: PositiveInt | None = None


class TrySection(StrictModel):
    """`llmops try`: where to send prompts and the sampling defaults for them (flags win)."""

    target: str | None = Field(default=None, description="base URL to send to; else serve the model")
    model: str | None = Field(default=None, description="model profile, provider model or route name")
    provider: str | None = None
    system: str | None = Field(default=None, description="system prompt")
    preset: str | None = Field(default=None, description="exact | assistant | creative | explore")
    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: PositiveInt | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    repetition_penalty: PositiveFloat | None = None
    stop: list[str] | None = None
    seed: int | None = None
    max_tokens: PositiveInt | None = None
    timeout: PositiveFloat | None = Field(default=None, description="seconds for a whole answer")


class MonitorSection(StrictModel):
    """Alert thresholds and scrape job names for `llmops monitor` (rules, dashboard, diagnose)."""

    vllm_version: str | None = Field(default=None, description="vLLM version the rules target (names change)")
    gateway_job: str | None = Field(default=None, description="Prometheus job of the gateway")
    vllm_job: str | None = Field(default=None, description="Prometheus job of the vLLM servers")
    llamacpp_job: str | None = Field(default=None, description="Prometheus job of llama-server")
    rate_window: str | None = Field(default=None, description="window of the alerts' rates, e.g. 5m")
    eval_interval: str | None = Field(default=None, description="how often Prometheus evaluates the groups")
    slo_source: Literal["gateway", "vllm"] | None = Field(
        default=None, description="whose histograms the bench.slos burn-rate alerts read"
    )
    error_rate: float | None = Field(default=None, gt=0, lt=1, description="5xx share that alerts")
    latency_p95_s: PositiveFloat | None = None
    cost_per_hour_usd: PositiveFloat | None = None
    kv_cache_usage: float | None = Field(default=None, gt=0, le=1)
    queue_waiting: PositiveInt | None = None
    ttft_p99_s: PositiveFloat | None = Field(default=None, description="default: bench.slos ttft_p99_ms")
    aborted_ratio: float | None = Field(default=None, gt=0, lt=1)
    llamacpp_deferred: PositiveInt | None = None
    alert_for: dict[str, str] = Field(
        default_factory=dict, description="per-alert `for:` override, e.g. {HighLLMErrorRate: 10m}"
    )


class Workspace(StrictModel):
    """Schema of llmops.yaml."""

    model: str | None = None
    node: str | None = None
    provider: str | None = None
    serve: ServeSection = Field(default_factory=ServeSection)
    bench: BenchSection = Field(default_factory=BenchSection)
    batch: BatchSection = Field(default_factory=BatchSection)
    quantize: QuantizeSection = Field(default_factory=QuantizeSection)
    trt: TrtSection = Field(default_factory=TrtSection)
    try_: TrySection = Field(default_factory=TrySection, alias="try")
    gateway: dict[str, Any] | None = Field(
        default=None, description="validated by its owner: llmops.gateway.config.gateway_section"
    )
    monitor: MonitorSection = Field(default_factory=MonitorSection)

    source: Path | None = Field(default=None, exclude=True, description="the file this came from")
    _doc: SourceDoc | None = PrivateAttr(default=None)
    _owned: dict[str, BaseModel] = PrivateAttr(default_factory=dict)


def owned_section(ws: Workspace, name: str, model: type[M]) -> M:
    """Section `name`, whose schema a capability package owns, validated by `model` (its defaults when
    the file has none); problems name the file, line and dotted field as for every other section."""
    cached = ws._owned.get(name)
    if isinstance(cached, model):
        return cached
    try:
        section = model.model_validate(getattr(ws, name) or {})
    except ValidationError as exc:
        if ws._doc is None:
            raise
        raise ProfileProblems(problems_from_validation(exc, ws._doc, model, prefix=(name,))) from exc
    ws._owned[name] = section
    return section


def find_workspace(config: Path | None = None, cwd: Path | None = None) -> Path | None:
    """--config FILE if given, else ./llmops.yaml when present."""
    if config is not None:
        return config
    candidate = cwd / WORKSPACE_FILE if cwd else Path(WORKSPACE_FILE)
    # a link that leads nowhere (or in a loop) is still the user's workspace file: loading it says why not
    return candidate if candidate.is_file() or candidate.is_symlink() else None


def load_workspace(config: Path | None = None, cwd: Path | None = None) -> Workspace:
    """The workspace file, validated with file:line errors; an empty Workspace when there is none."""
    path = find_workspace(config, cwd)
    if path is None:
        return Workspace()
    doc = load_yaml(path)
    data: Any = doc.data or {}
    if not isinstance(data, dict):
        from llmops.errors import Problem

        raise ProfileProblems(
            [Problem(str(path), 1, None, "expected a mapping (model:, node:, bench:, ...)")]
        )
    try:
        ws = Workspace.model_validate(data)
    except ValidationError as exc:
        raise ProfileProblems(problems_from_validation(exc, doc, Workspace)) from exc
    ws.source = path
    ws._doc = doc
    return ws


STARTER = """\
# llmops.yaml: this repository's defaults, so CI lines stay short
# (`llmops bench`, `llmops quantize --bits 4`, `llmops batch submit prompts.jsonl`).
# Precedence: command-line flags > LLMOPS_* environment variables > this file > profiles > defaults.
# `llmops profiles list` shows the model, node and provider names you can use.

model: {model}              # default model profile (name, alias, checkpoint dir or .gguf)
node: {node}           # default node profile
provider: {provider}              # default API provider for batch jobs

serve:
  host: 127.0.0.1
  port: 8000

bench:
  # target: http://127.0.0.1:8000/v1   # benchmark a running server; unset = serve the model first
  input_len: 128
  output_len: 64
  num_prompts: 50
  max_concurrency: 4
  slos:                         # `llmops bench` exits 1 when one breaks
    ttft_p99_ms: 2000
    error_rate: 0.01

batch:
  provider: local               # openai | anthropic | local
  # base_url: http://127.0.0.1:8000/v1
  concurrency: 8

quantize:
  method: gptq                  # gptq | bnb
  bits: 4
  # group_size: 128

trt:
  precision: fp16

try:                            # `llmops try "prompt"`
  # target: http://127.0.0.1:4000/v1   # a gateway; unset = serve the model for the duration
  # preset: assistant                  # exact | assistant | creative | explore
  max_tokens: 256
"""


def starter_text(model: str = DEFAULT_MODEL, node: str = DEFAULT_NODE, provider: str = "local") -> str:
    return STARTER.format(model=model, node=node, provider=provider)
