"""What a model's files on disk say: the architecture, the exact weight bytes, a checkpoint's quantization.

The only I/O the planner does: reading a local config.json, a safetensors index, file sizes, or GGUF
metadata. Hugging Face ids are never fetched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmops.errors import EnvironmentMissing, UsageError
from llmops.profiles.checkpoint import architecture_from_gguf, read_config_json, resolve_gguf_path
from llmops.profiles.schema import Architecture, ModelProfile

# config.json quantization_config.quant_method -> llmops quantization name
QUANT_METHODS = {
    "gptq": "gptq",
    "awq": "awq",
    "fp8": "fp8",
    "compressed-tensors": "compressed-tensors",
    "bitsandbytes": "bnb-4bit",
    "gptq_marlin": "gptq",
    "awq_marlin": "awq",
    "marlin": "gptq",
}


@dataclass
class ModelFacts:
    """The architecture plus what the files add: exact bytes on disk and the stored format."""

    architecture: Architecture
    weight_bytes: int | None = None  # exact bytes of the stored weights, when files are on disk
    weight_bytes_source: str | None = None
    quantization: str | None = None  # the checkpoint's own quantization (it cannot be changed at load)
    gguf_type: str | None = None  # e.g. Q4_1, from the GGUF file name
    notes: list[str] = field(default_factory=list)


def checkpoint_dir(model: ModelProfile) -> Path | None:
    if model.source.path:
        return Path(model.source.path).expanduser()
    if model.config:
        cfg = Path(model.config).expanduser()
        return cfg.parent if cfg.name.endswith(".json") else cfg
    return None


def model_facts(model: ModelProfile) -> ModelFacts:
    """Gather the architecture and the weight bytes from the profile and any local files it names."""
    if model.source.gguf:
        return _gguf_facts(model)
    directory = checkpoint_dir(model)
    arch = model.architecture
    if arch is None:
        if directory is None:
            raise UsageError(
                f"model {model.name} has no architecture numbers", hint="add architecture: or config:"
            )
        arch = read_config_json(directory / "config.json" if directory.is_dir() else directory)
    facts = ModelFacts(arch)
    if directory is not None and directory.is_dir():
        _read_checkpoint(directory, facts)
    return facts


def _read_checkpoint(directory: Path, facts: ModelFacts) -> None:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            total = json.loads(index.read_text(encoding="utf-8"))["metadata"]["total_size"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{index}: cannot read metadata.total_size ({exc})", hint="is this a safetensors index file?"
            ) from exc
        facts.weight_bytes, facts.weight_bytes_source = int(total), f"{index.name} total_size"
    else:
        files = sorted(directory.glob("*.safetensors"))
        if files:
            facts.weight_bytes = sum(f.stat().st_size for f in files)
            facts.weight_bytes_source = f"size of {len(files)} .safetensors file(s)"
    config = directory / "config.json"
    if config.is_file():
        try:
            raw = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return
        if not isinstance(raw, dict):
            return
        qc = raw.get("quantization_config") or (raw.get("text_config") or {}).get("quantization_config")
        if isinstance(qc, dict):
            method = str(qc.get("quant_method", "")).lower()
            facts.quantization = QUANT_METHODS.get(method, method or None)
            if method == "bitsandbytes" and qc.get("load_in_8bit"):
                facts.quantization = "bnb-8bit"


def _gguf_facts(model: ModelProfile) -> ModelFacts:
    notes: list[str] = []
    path: Path | None = None
    try:
        path = resolve_gguf_path(model.source)
    except (EnvironmentMissing, UsageError) as exc:
        notes.append(f"GGUF file not found ({exc.message}); weight size estimated from the parameter count")
    arch = model.architecture
    if arch is None:
        if path is None:
            raise UsageError(
                f"model {model.name}: no architecture numbers and no GGUF file to read them from",
                hint="add architecture: to the profile or install the file",
            )
        arch = architecture_from_gguf(path)
    facts = ModelFacts(arch, gguf_type=gguf_type(model.source.gguf or ""), notes=notes, quantization="gguf")
    if path is not None:
        facts.weight_bytes, facts.weight_bytes_source = path.stat().st_size, "GGUF file size"
    return facts


def gguf_type(filename: str) -> str | None:
    """The quantization type in a GGUF file name (…Q4_K_M.gguf -> Q4_K_M), if it names one."""
    match = re.search(r"(IQ\d_[A-Z]+|Q\d_K_[SML]|Q\d_K|Q\d_\d|BF16|F16|F32)", Path(filename).stem.upper())
    return match.group(1) if match else None
