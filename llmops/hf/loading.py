"""The one tokenizer loader and the one model loader: local files only, never the network.

Every `from_pretrained` in llmops goes through here with `local_files_only=True`, so a name that is not
on this machine is a clear exit 2 instead of a download (or a hang without network). `extra` names the
llmops extra to install when transformers or torch is missing (`onnx` for trt, `quantize` for quantize).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.errors import UsageError, require_module


def quiet_libraries(verbose: bool) -> None:
    """Keep stdout for llmops' own result: library progress bars and info logs only with -v."""
    if verbose:
        return
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_tokenizer(
    where: Path | str,
    *,
    gguf_file: str | None = None,
    revision: str | None = None,
    padding_side: str | None = None,
    pad_with_eos: bool = True,
    extra: str = "quantize",
) -> Any:
    """A tokenizer from a checkpoint or tokenizer folder, a cached Hugging Face id, or a GGUF file's folder.

    Padding uses the end-of-sequence token when the tokenizer has none (SmolLM2 has none).
    """
    transformers = require_module("transformers", extra=extra, purpose="loading a tokenizer")
    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if revision:
        kwargs["revision"] = revision
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(where), **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        shown = f"{where}/{gguf_file}" if gguf_file else str(where)
        raise UsageError(
            f"{shown} has no usable tokenizer on this machine ({_first_line(exc)})",
            hint="give a checkpoint folder with tokenizer.json / tokenizer_config.json (llmops downloads nothing)",
        ) from exc
    if pad_with_eos and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side:
        tokenizer.padding_side = padding_side
    return tokenizer


def tokenizer_for(source: Any, *, extra: str = "quantize") -> Any:
    """The tokenizer of a profile's `source` (ModelSource): its tokenizer, folder, cached HF id or GGUF."""
    if source.tokenizer:
        return load_tokenizer(Path(source.tokenizer).expanduser(), extra=extra)
    if source.path:
        return load_tokenizer(Path(source.path).expanduser(), extra=extra)
    if source.hf:
        return load_tokenizer(source.hf, revision=source.revision, extra=extra)
    from llmops.profiles.checkpoint import resolve_gguf_path

    gguf = resolve_gguf_path(source)
    return load_tokenizer(gguf.parent, gguf_file=gguf.name, extra=extra)


def load_model(
    path: Path,
    *,
    dtype: str | None = None,
    gguf_file: str | None = None,
    extra: str = "quantize",
    **kwargs: Any,
) -> Any:
    """A causal LM from a checkpoint folder (or a GGUF in it), in eval mode; dtype 'float32', ... or auto."""
    torch = require_module("torch", extra=extra, purpose="loading a model")
    transformers = require_module("transformers", extra=extra, purpose="loading a model")
    if gguf_file is None and not (Path(path) / "config.json").is_file():
        raise UsageError(f"{path} has no config.json", hint="point at a Hugging Face checkpoint folder")
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path), dtype=getattr(torch, dtype) if dtype else "auto", local_files_only=True, **kwargs
    )
    model.eval()
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
