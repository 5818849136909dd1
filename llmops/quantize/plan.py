"""Resolve a quantize request into a plan: every value and where it came from (the one resolver). No torch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.profiles.schema import Architecture, ModelProfile
from llmops.quantize.groups import choose_group_size, quantized_in_features
from llmops.quantize.profile import ProfileTarget, choose_profile
from llmops.quantize.registry import QuantizerSpec, spec_for
from llmops.quantize.texts import BUILTIN_CALIBRATION, BUILTIN_EVAL
from llmops.settings import Resolved, Resolver, resolve_model_node
from llmops.workspace import QuantizeSection

DEFAULT_METHOD = "gptq"
DEFAULT_BITS = 4
DEFAULT_SAMPLES = 32
DEFAULT_SEQ_LEN = 256
EVAL_SEQ_LEN = 512


@dataclass(frozen=True, kw_only=True)
class QuantizeFlags:
    """What the user typed; None means 'not given' so the environment, workspace and defaults fill it."""

    method: str | None = None
    bits: int | None = None
    format: str | None = None
    group_size: int | None = None
    calib: Path | None = None
    samples: int | None = None
    seq_len: int | None = None
    output: Path | None = None
    eval: bool | None = None
    eval_file: Path | None = None
    profile: bool | None = None


@dataclass(frozen=True)
class QuantizePlan:
    model: ModelProfile
    spec: QuantizerSpec
    settings: Resolved
    in_features: tuple[int, ...]
    profile: ProfileTarget | None = None  # where the model profile goes; None with --no-profile

    def value(self, key: str) -> Any:
        return self.settings.value(key)

    @property
    def bits(self) -> int:
        return self.value("bits")

    @property
    def group_size(self) -> int | None:
        return self.value("group_size")

    @property
    def output(self) -> Path:
        return Path(self.value("output"))

    @property
    def scheme(self) -> str:
        return self.spec.scheme(self.bits, self.group_size)

    def facts(self) -> dict[str, Any]:
        """What --dry-run shows besides the settings."""
        return {
            "quantizer": self.spec.label,
            "scheme": self.scheme,
            "profile_name": self.profile.name if self.profile else None,
            "profile_path": str(self.profile.path) if self.profile else None,
            "notes": [self.profile.note] if self.profile and self.profile.note else [],
        }

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, value, origin) for --dry-run."""
        return [
            (k, "per-channel" if k == "group_size" and v == "" else v, o) for k, v, o in self.settings.rows()
        ]


def plan_quantize(catalog: Any, workspace: Any, model: str | None, flags: QuantizeFlags) -> QuantizePlan:
    """The model (flag > $LLMOPS_MODEL > llmops.yaml > smollm2), every setting, and where the profile goes."""
    r = Resolver("quantize", workspace.quantize)
    loaded, _ = resolve_model_node(catalog, workspace, model, resolver=r, need_node=False)
    plan = make_plan(loaded.profile, flags, workspace.quantize, resolver=r)
    if not plan.value("profile"):
        return plan
    target = choose_profile(catalog, plan.output, plan.spec.slug(plan.bits, plan.group_size))
    return replace(plan, profile=target)


def make_plan(
    model: ModelProfile,
    flags: QuantizeFlags,
    ws: QuantizeSection | None = None,
    *,
    resolver: Resolver | None = None,
) -> QuantizePlan:
    """Every setting by precedence flags > $LLMOPS_QUANTIZE_* > workspace > defaults, checked against the
    chosen quantizer. Pure: no torch, no files."""
    r = resolver or Resolver("quantize", ws or QuantizeSection())
    method = r.take("method", flags.method, default=DEFAULT_METHOD)
    bits = r.take("bits", flags.bits, default=DEFAULT_BITS)
    fmt = r.take("format", flags.format)
    spec = spec_for(method, fmt)
    r.set("format", spec.format, r.resolved.origin("format") or "default")
    if bits not in spec.bits:
        raise UsageError(
            f"unsupported --bits {bits} for {spec.label}",
            hint=f"use --bits {' or '.join(map(str, spec.bits))}",
        )
    arch = require_architecture(model)
    in_features = tuple(sorted(quantized_in_features(arch)))
    group = r.take("group_size", flags.group_size)
    group_origin = r.resolved.origin("group_size") or "default"
    if not spec.grouped:
        if group is not None:
            raise UsageError(
                f"{spec.label} has no group size (it was set by {group_origin})",
                hint="leave --group-size out, or use --method gptq",
            )
        del r.resolved["group_size"]  # not a setting of this method
    else:
        r.set("group_size", choose_group_size(in_features, group), group_origin)
    if spec.calibrated:
        r.take("calib", flags.calib, default=BUILTIN_CALIBRATION)
        r.take("samples", flags.samples, default=DEFAULT_SAMPLES)
        r.take("seq_len", flags.seq_len, default=DEFAULT_SEQ_LEN)
        _check_positive(r.resolved, ("samples", "seq_len"))
    else:
        for key, given in (("calib", flags.calib), ("samples", flags.samples), ("seq_len", flags.seq_len)):
            if given is not None:
                raise UsageError(
                    f"{spec.label} needs no calibration data (--{key.replace('_', '-')} was given)",
                    hint="leave it out, or use --method gptq",
                )
    if r.take("eval", flags.eval, default=True):
        r.take("eval_file", flags.eval_file, default=BUILTIN_EVAL)
    default_out = Path.cwd() / f"{model.name}-{spec.slug(bits, r.resolved.value('group_size'))}"
    out = r.take("output", flags.output, default=default_out)
    r.set("output", Path(out).expanduser().absolute(), r.resolved.origin("output") or "default")
    r.take("profile", flags.profile, default=True)
    return QuantizePlan(model, spec, r.resolved, in_features)


def require_architecture(model: ModelProfile) -> Architecture:
    if model.architecture is None:
        raise UsageError(
            f"model '{model.name}' has no architecture numbers",
            hint="add architecture: to its profile, or give the checkpoint directory itself",
        )
    return model.architecture


def _check_positive(s: Resolved, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = s.value(key)
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be a positive integer (got {value!r})")
