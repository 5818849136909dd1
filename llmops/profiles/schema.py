"""Pydantic models for the three profile kinds: nodes, models and providers.

Every model forbids unknown keys, so a typo in a YAML file is an error, not a silent default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, create_model, model_validator

from llmops.profiles.serving import (
    DTYPES,
    ENGINE_NAMES,
    KV_CACHE_DTYPES,
    NODE_SETTINGS,
    PROFILE_SETTINGS,
    QUANTIZATIONS,
    ServingSetting,
)

ProfileKind = Literal["node", "model", "provider"]
Engine = Literal[ENGINE_NAMES]  # type: ignore[valid-type]
Dtype = Literal[DTYPES]  # type: ignore[valid-type]
Quantization = Literal[QUANTIZATIONS]  # type: ignore[valid-type]
KvCacheDtype = Literal[KV_CACHE_DTYPES]  # type: ignore[valid-type]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class StrictModel(BaseModel):
    """Base for every file format: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ProfileBase(StrictModel):
    kind: ProfileKind | None = None
    name: Name
    aliases: list[Name] = Field(default_factory=list)
    description: str | None = None


# --- nodes -------------------------------------------------------------------------------------


class GpuSpec(StrictModel):
    model: str = Field(description="GPU model, e.g. 'NVIDIA A100-SXM4-40GB'")
    count: PositiveInt = Field(description="GPUs per node")
    memory_gib: PositiveFloat = Field(
        description="memory per GPU as CUDA reports it (GiB), not the marketing figure"
    )
    interconnect: Literal["nvlink", "pcie", "none"] = "pcie"
    vendor: Literal["nvidia", "amd"] = "nvidia"
    compute_capability: str | None = None


class CpuSpec(StrictModel):
    model: str | None = None
    cores: PositiveInt
    ram_gib: PositiveFloat


# --- models ------------------------------------------------------------------------------------


class ModelSource(StrictModel):
    """Where the weights come from: exactly one of hf, path or gguf."""

    hf: str | None = Field(default=None, description="Hugging Face repo id")
    revision: str | None = None
    path: str | None = Field(default=None, description="local checkpoint directory")
    gguf: str | None = Field(default=None, description="GGUF file; relative to `package` when that is set")
    package: str | None = Field(default=None, description="Python package that ships the GGUF file")
    tokenizer: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [k for k in ("hf", "path", "gguf") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"set exactly one of hf, path or gguf (got {', '.join(given) or 'none'})")
        if self.package and not self.gguf:
            raise ValueError("package is only used together with gguf")
        return self

    def describe(self) -> str:
        if self.hf:
            return self.hf
        if self.path:
            return self.path
        return f"{self.package}/{self.gguf}" if self.package else str(self.gguf)


class Architecture(StrictModel):
    """The numbers the memory plan needs, as in a Hugging Face config.json."""

    num_layers: PositiveInt
    hidden_size: PositiveInt
    num_attention_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt | None = None
    vocab_size: PositiveInt
    intermediate_size: PositiveInt | None = None
    num_params: PositiveFloat | None = Field(
        default=None, description="total parameters (every expert counted)"
    )
    tie_word_embeddings: bool = False
    max_position_embeddings: PositiveInt | None = None
    num_experts: PositiveInt | None = None
    num_experts_per_tok: PositiveInt | None = None
    moe_intermediate_size: PositiveInt | None = None
    kv_lora_rank: PositiveInt | None = Field(
        default=None, description="MLA models (DeepSeek): compressed KV rank"
    )
    qk_rope_head_dim: PositiveInt | None = None
    torch_dtype: Dtype | None = None

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None


class LoraModule(StrictModel):
    name: str
    path: str


def setting_annotation(spec: ServingSetting, *, optional: bool | None = None) -> Any:
    """The pydantic type of a serving setting, from the one table (choices, bounds, None allowed)."""
    base: Any = spec.type
    if spec.choices:
        base = Literal[spec.choices]  # type: ignore[valid-type]
    elif isinstance(base, str):
        base = {"list[LoraModule]": list[LoraModule]}[base]
    bounds = {k: v for k, v in (("ge", spec.ge), ("gt", spec.gt), ("le", spec.le)) if v is not None}
    if bounds:
        base = Annotated[base, Field(**bounds)]
    if spec.optional if optional is None else optional:
        base = base | None
    return base


def settings_model(
    name: str,
    specs: tuple[ServingSetting, ...],
    *,
    defaults: bool = True,
    field_name: Any = None,
    doc: str = "",
    base: type[BaseModel] | None = None,
    required: bool = False,
    nullable: tuple[str, ...] = (),
) -> Any:
    """A strict pydantic model with one field per setting: the table's defaults, or all None (unset)."""
    fields: dict[str, Any] = {}
    for spec in specs:
        key = field_name(spec) if field_name else spec.name
        if required:  # a resolved value: never None unless listed in `nullable`
            if spec.name in nullable:
                fields[key] = (setting_annotation(spec, optional=True), Field(None, description=spec.help))
            else:
                fields[key] = (setting_annotation(spec, optional=False), Field(description=spec.help))
            continue
        annotation = setting_annotation(spec, optional=spec.optional or not defaults)
        if not defaults:
            fields[key] = (annotation, Field(default=None, description=spec.help))
        elif isinstance(spec.default, tuple):
            fields[key] = (annotation, Field(default_factory=list, description=spec.help))
        else:
            fields[key] = (annotation, Field(default=spec.default, description=spec.help))
    model = create_model(name, __base__=base or StrictModel, __module__=__name__, **fields)
    model.__doc__ = doc
    return model


ServingSettings = settings_model(
    "ServingSettings",
    PROFILE_SETTINGS,
    doc="A model profile's `serving:` block: engine settings (vLLM's names) and planner settings.",
)
NodeServing = settings_model(
    "NodeServing",
    NODE_SETTINGS,
    defaults=False,
    doc="A node profile's `serving:` block: this machine's engine settings; None = not set.",
)


class NodeProfile(ProfileBase):
    gpu: GpuSpec | None = Field(default=None, description="absent for CPU-only nodes")
    cpu: CpuSpec
    count: PositiveInt = Field(default=1, description="identical nodes in the pool (for multi-node serving)")
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes nodeSelector labels")
    serving: NodeServing = Field(  # type: ignore[valid-type]
        default_factory=lambda: NodeServing(),
        description="engine settings for this machine (KV space, threads, engine environment); a model "
        "profile's serving: wins, and an engine that does not take a setting ignores it",
    )

    @property
    def gpu_count(self) -> int:
        return self.gpu.count if self.gpu else 0


class SamplingDefaults(StrictModel):
    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: Annotated[float, Field(gt=0)] | None = None
    stop: list[str] | None = None
    seed: int | None = None
    max_tokens: PositiveInt | None = None

    def as_request_fields(self) -> dict[str, Any]:
        """The set fields, ready to merge into an OpenAI-style request body."""
        return self.model_dump(exclude_none=True)


class ModelProfile(ProfileBase):
    source: ModelSource
    architecture: Architecture | None = None
    config: str | None = Field(
        default=None, description="path to a Hugging Face config.json (instead of architecture)"
    )
    default_node: str | None = None
    engine: Engine = "vllm"
    serving: ServingSettings = Field(default_factory=ServingSettings)
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)
    license: str | None = None

    @model_validator(mode="after")
    def _architecture_given(self) -> ModelProfile:
        if (
            self.architecture is None
            and self.config is None
            and self.source.gguf is None
            and not self.source.path
        ):
            raise ValueError("give architecture numbers or a config path (config.json)")
        return self


# --- providers ---------------------------------------------------------------------------------


class ProviderModel(StrictModel):
    name: str
    input_per_1m: Annotated[float, Field(ge=0)] = Field(description="USD per 1M input tokens")
    output_per_1m: Annotated[float, Field(ge=0)] = Field(description="USD per 1M output tokens")
    cached_input_per_1m: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="USD per 1M input tokens served from the provider's prompt cache"
    )
    context_window: PositiveInt | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None


class BatchLimits(StrictModel):
    supported: bool = True
    discount: Annotated[float, Field(ge=0, le=1)] = Field(default=0.5, description="fraction off list price")
    max_requests: PositiveInt = 50_000
    max_bytes: PositiveInt = 200 * 1024 * 1024
    completion_window: str = "24h"


class ProviderProfile(ProfileBase):
    api: Literal["openai", "anthropic", "google", "openai-compatible"]
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="variable holding the key"
    )
    models: list[ProviderModel] = Field(default_factory=list)
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    batch: BatchLimits = Field(default_factory=BatchLimits)

    def model(self, name: str) -> ProviderModel | None:
        return next((m for m in self.models if m.name == name), None)


PROFILE_CLASSES: dict[str, type[ProfileBase]] = {
    "node": NodeProfile,
    "model": ModelProfile,
    "provider": ProviderProfile,
}
FOLDER_KINDS: dict[str, ProfileKind] = {"nodes": "node", "models": "model", "providers": "provider"}
