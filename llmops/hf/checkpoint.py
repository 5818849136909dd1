"""Turn a model profile into a plain Hugging Face checkpoint directory, without downloading anything.

A GGUF is de-quantized by transformers (`gguf_file=`), but transformers then marks the model as
GGUF-quantized and refuses `save_pretrained`; so the model is rebuilt from its config without
`quantization_config`, given the state dict, and saved in 16-bit. The result is cached per file hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from llmops.errors import OperationFailed, UsageError
from llmops.paths import user_data_dir
from llmops.profiles.schema import ModelProfile
from llmops.progress import NullProgress, ProgressReporter

CHECKPOINT_DIR = "checkpoints"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_checkpoint_dir(path: Path) -> bool:
    """A directory with config.json and at least one weight file."""
    return (path / "config.json").is_file() and any(
        p.suffix in WEIGHT_SUFFIXES for p in path.iterdir() if p.is_file()
    )


def checkpoint_cache_dir(cache_dir: Path | None = None) -> Path:
    return cache_dir or user_data_dir() / CHECKPOINT_DIR


def materialize_checkpoint(
    model: ModelProfile, *, cache_dir: Path | None = None, progress: ProgressReporter | None = None
) -> Path:
    """A plain Hugging Face checkpoint directory (config.json, 16-bit safetensors, tokenizer) for a profile.

    A local directory is returned as it is; a GGUF is converted once and cached under
    `<data dir>/checkpoints/<name>-<hash>`; a Hugging Face id must already be in the local HF cache.
    """
    source = model.source
    if source.path:
        return local_checkpoint(Path(source.path).expanduser(), model.name)
    if source.hf:
        return hf_cached_checkpoint(source.hf, source.revision)
    from llmops.profiles.checkpoint import resolve_gguf_path

    gguf = resolve_gguf_path(source)
    return gguf_to_checkpoint(
        gguf, name=model.name, dtype=_target_dtype(model), cache_dir=cache_dir, progress=progress
    )


def local_checkpoint(path: Path, name: str = "model") -> Path:
    if not path.is_dir():
        raise UsageError(
            f"checkpoint directory {path} of model '{name}' does not exist",
            hint="check the profile's source.path",
        )
    if not is_checkpoint_dir(path):
        raise UsageError(
            f"{path} is not a Hugging Face checkpoint (config.json and *.safetensors expected)",
            hint="point at a directory saved with save_pretrained",
        )
    return path


def hf_cached_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """A Hugging Face id resolved from the local cache only: llmops never downloads weights at run time."""
    local = Path(repo_id).expanduser()
    if local.is_dir():
        return local_checkpoint(local, repo_id)
    try:
        from huggingface_hub import snapshot_download

        found = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception as exc:  # any hub error here means: not in the local cache
        raise UsageError(
            f"model 'hf:{repo_id}' is not on this machine (llmops downloads nothing at run time)",
            hint=f"download it first (`hf download {repo_id} --local-dir DIR`) and give DIR as the model",
        ) from exc
    return local_checkpoint(found, repo_id)


def _target_dtype(model: ModelProfile) -> str:
    """16-bit on disk: the profile's 16-bit dtype, else bfloat16 (what GGUFs are usually made from)."""
    arch = model.architecture
    if arch is not None and arch.torch_dtype in ("bfloat16", "float16"):
        return arch.torch_dtype
    return "bfloat16"


def checkpoint_target(model: ModelProfile, *, cache_dir: Path | None = None) -> Path:
    """Where `materialize_checkpoint` puts (or finds) a profile's checkpoint, without converting anything:
    what a launch names before the conversion runs (a GGUF's target in the cache; else the source)."""
    source = model.source
    if not source.gguf:
        return Path(source.path or source.hf or "").expanduser()
    from llmops.profiles.checkpoint import resolve_gguf_path

    gguf = resolve_gguf_path(source)
    return gguf_checkpoint_target(gguf, name=model.name, dtype=_target_dtype(model), cache_dir=cache_dir)


def gguf_checkpoint_target(
    gguf: Path, *, name: str | None = None, dtype: str = "bfloat16", cache_dir: Path | None = None
) -> Path:
    """The cache directory a GGUF converts to: `<name>-<sha256 prefix>-<dtype>`."""
    digest = file_sha256(gguf)[:16]
    return checkpoint_cache_dir(cache_dir) / f"{_safe(name or gguf.stem)}-{digest}-{dtype}"


def gguf_to_checkpoint(
    gguf: Path,
    *,
    name: str | None = None,
    dtype: str = "bfloat16",
    cache_dir: Path | None = None,
    progress: ProgressReporter | None = None,
) -> Path:
    """Convert a GGUF file to a cached Hugging Face checkpoint (once); later calls reuse it."""
    progress = progress or NullProgress()
    target = gguf_checkpoint_target(gguf, name=name, dtype=dtype, cache_dir=cache_dir)
    root, stem = target.parent, _safe(name or gguf.stem)
    digest = target.name.removeprefix(f"{stem}-").split("-")[0]
    if is_checkpoint_dir(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=root))
    try:
        progress.start(3, f"converting {gguf.name} to a Hugging Face checkpoint")
        model, tokenizer = _load_plain_from_gguf(gguf, dtype, progress)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "llmops-source.json").write_text(
            json.dumps({"gguf": str(gguf), "sha256_prefix": digest, "dtype": dtype}, indent=2) + "\n"
        )
        progress.update(1, step="saved")
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        progress.finish()
    return target


def _load_plain_from_gguf(gguf: Path, dtype: str, progress: ProgressReporter) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from llmops.hf.loading import load_model, load_tokenizer

    try:
        loaded = load_model(gguf.parent, gguf_file=gguf.name, dtype="float32")
        # padding is set after the special tokens are corrected (the GGUF's eos can be wrong)
        tokenizer = load_tokenizer(gguf.parent, gguf_file=gguf.name, pad_with_eos=False)
    except (OSError, ValueError, KeyError, RuntimeError, UsageError) as exc:
        raise OperationFailed(
            f"transformers could not load {gguf}: {exc}",
            hint="check that the GGUF's architecture is one transformers supports",
        ) from exc
    progress.update(1, step="de-quantized")
    settings = {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    config = type(loaded.config).from_dict(settings)
    torch_dtype = getattr(torch, dtype)
    config.dtype = dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not _tied(k, plain)]
    if missing or unexpected:
        raise OperationFailed(
            f"rebuilding {gguf.name} left weights unmatched (missing {missing[:3]}, "
            f"unexpected {list(unexpected)[:3]})"
        )
    plain.generation_config = loaded.generation_config
    _align_special_tokens(tokenizer, plain.config)
    plain.to(torch_dtype)
    del loaded
    progress.update(1, step="rebuilt")
    return plain, tokenizer


def _align_special_tokens(tokenizer: Any, config: Any) -> None:
    """transformers' GGUF tokenizer conversion can get eos wrong (SmolLM2: eos = <|im_start|>); the
    GGUF's own ids, kept in the config, are right. Padding uses end-of-sequence (SmolLM2 has none)."""
    for attr in ("bos", "eos"):
        token_id = getattr(config, f"{attr}_token_id", None)
        if isinstance(token_id, int) and 0 <= token_id < len(tokenizer):
            setattr(tokenizer, f"{attr}_token", tokenizer.convert_ids_to_tokens(token_id))
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def _tied(key: str, model: Any) -> bool:
    return key == "lm_head.weight" and bool(getattr(model.config, "tie_word_embeddings", False))


def _publish(tmp: Path, target: Path) -> None:
    """Atomic rename into place; if another process got there first, keep theirs."""
    try:
        os.rename(tmp, target)
    except OSError:
        if is_checkpoint_dir(target):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(target, ignore_errors=True)  # a stale, incomplete leftover from an older version
        os.rename(tmp, target)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name) or "model"
