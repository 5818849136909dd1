"""The planner's request and result formats (pydantic, so `--json` is `model_dump`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from llmops.profiles.schema import Dtype, KvCacheDtype, Quantization, StrictModel

Verdict = Literal["fits", "poor", "does-not-fit"]


class PlanRequest(StrictModel):
    """What to plan for; None means: take it from the model profile, else the defaults."""

    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    dtype: Dtype | None = None
    quantization: Quantization | None = None
    kv_cache_dtype: KvCacheDtype | None = None
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=1)
    gpus: int | None = Field(default=None, ge=1, description="override the node's GPU count")
    gpu_memory_gib: float | None = Field(default=None, gt=0, description="override the node's memory per GPU")
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    min_concurrency: float | None = Field(default=None, gt=0, description="below this the verdict is 'poor'")


class Capacity(StrictModel):
    """A recommendation's outcome: the figures that changed."""

    verdict: Verdict
    fits: bool
    weights_gib_per_gpu: float
    kv_cache_gib_per_gpu: float
    kv_cache_tokens: int
    max_concurrency: float
    max_model_len: int


class Recommendation(StrictModel):
    description: str
    changes: dict[str, Any] = Field(description="the settings to change (vLLM flag names)")
    result: Capacity


class Plan(StrictModel):
    """Every figure of a memory plan, per GPU (per node RAM when device is 'cpu')."""

    model: str
    node: str
    engine: str
    device: Literal["gpu", "cpu"]
    # inputs used, and where each came from (flag, profile, checkpoint, default)
    gpus: int
    gpu_memory_gib: float
    tp: int
    pp: int
    dtype: str
    quantization: str
    kv_cache_dtype: str
    gpu_memory_utilization: float
    max_model_len: int
    max_num_batched_tokens: int
    max_num_seqs: int
    min_concurrency: float
    origins: dict[str, str] = Field(default_factory=dict)
    # figures
    num_params: float
    weights_source: str
    weights_gib_total: float
    weights_gib_per_gpu: float
    memory_budget_gib_per_gpu: float
    activation_gib_per_gpu: float
    non_torch_gib_per_gpu: float
    headroom_gib_per_gpu: float = Field(
        description="memory outside the budget, where CUDA graphs are captured"
    )
    kv_cache_gib_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    kv_cache_tokens: int
    max_concurrency: float
    replicas: int = Field(
        default=1, description="model replicas the node holds (data parallel): gpus // (tp x pp)"
    )
    fits: bool
    verdict: Verdict
    shortfall_gib: float = Field(
        description="GiB per GPU missing for one max_model_len sequence; 0 when it fits"
    )
    notes: list[str] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)

    def capacity(self) -> Capacity:
        return Capacity(
            verdict=self.verdict,
            fits=self.fits,
            weights_gib_per_gpu=self.weights_gib_per_gpu,
            kv_cache_gib_per_gpu=self.kv_cache_gib_per_gpu,
            kv_cache_tokens=self.kv_cache_tokens,
            max_concurrency=self.max_concurrency,
            max_model_len=self.max_model_len,
        )

    def summary(self) -> str:
        """One line for people: the verdict and the figure that decides it."""
        where = "RAM" if self.device == "cpu" else "per GPU"
        if not self.fits:
            available = (
                self.memory_budget_gib_per_gpu - self.activation_gib_per_gpu - self.non_torch_gib_per_gpu
            )
            if self.weights_gib_per_gpu > available:
                return (
                    f"does not fit: needs {self.weights_gib_per_gpu:.1f} GiB of weights {where}, "
                    f"{available:.1f} GiB available (short by {self.shortfall_gib:.1f} GiB)"
                )
            return (
                f"does not fit: KV cache holds {self.kv_cache_tokens:,} tokens, "
                f"one {self.max_model_len:,}-token sequence needs more "
                f"(short by {self.shortfall_gib:.1f} GiB {where})"
            )
        head = (
            "fits" if self.verdict == "fits" else f"fits poorly (below {self.min_concurrency:g} concurrent)"
        )
        return (
            f"{head}: {self.weights_gib_per_gpu:.1f} GiB weights {where}, "
            f"KV cache {self.kv_cache_gib_per_gpu:.1f} GiB = {self.kv_cache_tokens:,} tokens, "
            f"{self.max_concurrency:.1f} concurrent requests of "
            f"{self.max_model_len:,} tokens"
        )
