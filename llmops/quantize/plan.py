"""Resolve a quantize request into a plan: every value and where it came from. Pure: no torch here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.profiles.schema import Architecture, ModelProfile
from llmops.quantize.groups import choose_group_size, quantized_in_features
from llmops.quantize.registry import QUANTIZERS, QuantizerSpec, spec_for
from llmops.quantize.texts import BUILTIN_CALIBRATION, BUILTIN_EVAL
from llmops.settings import Setting, pick
from llmops.workspace import QuantizeSection

DEFAULT_METHOD = "gptq"
DEFAULT_BITS = 4
DEFAULT_SAMPLES = 32
DEFAULT_SEQ_LEN = 256
EVAL_SEQ_LEN = 512


@dataclass(frozen=True)
class QuantizeFlags:
    """What the user typed; None means 'not given' so the workspace and defaults can fill it."""

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
    force: bool = False


@dataclass(frozen=True)
class QuantizePlan:
    model: ModelProfile
    spec: QuantizerSpec
    settings: dict[str, Setting]
    in_features: tuple[int, ...]

    def value(self, key: str) -> Any:
        return self.settings[key].value

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

    def as_json(self) -> dict[str, dict[str, Any]]:
        """{setting: {value, origin}} with JSON-ready values, for --dry-run --json."""
        return {
            k: {"value": str(s.value) if isinstance(s.value, Path) else s.value, "origin": s.origin}
            for k, s in self.settings.items()
        }

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, value, origin) for --dry-run."""
        return [
            (k, "per-channel" if k == "group_size" and s.value is None else str(s.value), s.origin)
            for k, s in self.settings.items()
        ]


def make_plan(model: ModelProfile, flags: QuantizeFlags, ws: QuantizeSection | None = None) -> QuantizePlan:
    """Every setting by precedence flags > workspace > defaults, checked against the chosen quantizer."""
    ws = ws or QuantizeSection()
    s: dict[str, Setting] = {}
    s["method"] = pick(flags.method, workspace=ws.method, default=DEFAULT_METHOD)
    if s["method"].value not in {m for m, _ in QUANTIZERS}:
        raise UsageError(f"unknown --method '{s['method'].value}'", hint="use gptq or bnb")
    s["bits"] = pick(flags.bits, workspace=ws.bits, default=DEFAULT_BITS)
    s["format"] = pick(flags.format, workspace=ws.format, default=None)
    spec = spec_for(s["method"].value, s["format"].value)
    s["format"] = Setting(spec.format, s["format"].origin)
    if s["bits"].value not in spec.bits:
        raise UsageError(
            f"unsupported --bits {s['bits'].value} for {spec.label}",
            hint=f"use --bits {' or '.join(map(str, spec.bits))}",
        )
    arch = require_architecture(model)
    in_features = tuple(sorted(quantized_in_features(arch)))
    group = pick(flags.group_size, workspace=ws.group_size, default=None)
    if not spec.grouped:
        if group.value is not None:
            raise UsageError(
                f"{spec.label} has no group size (it was set by {group.origin})",
                hint="leave --group-size out, or use --method gptq",
            )
        s["group_size"] = Setting(None, "default")
    else:
        s["group_size"] = Setting(
            choose_group_size(in_features, group.value),
            group.origin if group.value is not None else "default",
        )
    if spec.calibrated:
        s["calib"] = pick(flags.calib, workspace=ws.calib, default=BUILTIN_CALIBRATION)
        s["samples"] = pick(flags.samples, workspace=ws.samples, default=DEFAULT_SAMPLES)
        s["seq_len"] = pick(flags.seq_len, workspace=ws.seq_len, default=DEFAULT_SEQ_LEN)
        _check_positive(s, ("samples", "seq_len"))
    else:
        for key, given in (("calib", flags.calib), ("samples", flags.samples), ("seq_len", flags.seq_len)):
            if given is not None:
                raise UsageError(
                    f"{spec.label} needs no calibration data (--{key.replace('_', '-')} was given)",
                    hint="leave it out, or use --method gptq",
                )
    s["eval"] = pick(flags.eval, workspace=ws.eval, default=True)
    if s["eval"].value:
        s["eval_file"] = pick(flags.eval_file, workspace=ws.eval_file, default=BUILTIN_EVAL)
    default_out = Path.cwd() / f"{model.name}-{spec.slug(s['bits'].value, s['group_size'].value)}"
    s["output"] = pick(flags.output, workspace=ws.output, default=default_out)
    s["output"] = Setting(Path(s["output"].value).expanduser().absolute(), s["output"].origin)
    return QuantizePlan(model, spec, s, in_features)


def require_architecture(model: ModelProfile) -> Architecture:
    if model.architecture is None:
        raise UsageError(
            f"model '{model.name}' has no architecture numbers",
            hint="add architecture: to its profile, or give the checkpoint directory itself",
        )
    return model.architecture


def _check_positive(s: dict[str, Setting], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = s[key].value
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be a positive integer (got {value!r})")
