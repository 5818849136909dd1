"""The planner's request and result formats (pydantic, so `--json` is `model_dump`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from llmops.profiles.schema import StrictModel, settings_model
from llmops.profiles.serving import PLAN_SETTINGS

Verdict = Literal["fits", "poor", "does-not-fit"]


def _plan_name(spec: Any) -> str:
    return spec.plan_name


class _WhatIf(StrictModel):
    """What the node does not say but a question may ask: more GPUs, bigger GPUs."""

    gpus: int | None = Field(default=None, ge=1, description="override the node's GPU count")
    gpu_memory_gib: float | None = Field(default=None, gt=0, description="override the node's memory per GPU")


# The serving settings the planner reads, by its names (tp, pp, ...), from the one settings table;
# None means: take it from the model profile, else the default.
PlanRequest = settings_model(
    "PlanRequest",
    PLAN_SETTINGS,
    defaults=False,
    field_name=_plan_name,
    base=_WhatIf,
    doc="What to plan for; None means: take it from the model profile, else the defaults.",
)


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


class _PlanFigures(StrictModel):
    """Every figure of a memory plan, per GPU (per node RAM when device is 'cpu')."""

    model: str
    node: str
    device: Literal["gpu", "cpu"]
    gpus: int
    gpu_memory_gib: float
    origins: dict[str, str] = Field(default_factory=dict, description="where each input came from")
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


class _PlanMethods(_PlanFigures):
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
        where = "in RAM" if self.device == "cpu" else "per GPU"
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


# The plan repeats every input it used (resolved: never None), by the planner's names.
Plan = settings_model(
    "Plan",
    PLAN_SETTINGS,
    required=True,
    nullable=("vllm_version", "cpu_kvcache_space_gib"),
    field_name=_plan_name,
    base=_PlanMethods,
    doc=_PlanFigures.__doc__ or "",
)
