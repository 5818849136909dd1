"""The output directory and the model profile for it: never overwrite, never leave half a result."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from llmops.errors import UsageError
from llmops.paths import user_config_dir
from llmops.profiles.schema import ModelProfile, ModelSource, ServingSettings


def check_output(path: Path, force: bool) -> None:
    """Refuse an existing non-empty output directory (or a file) unless --force."""
    if path.is_file():
        raise UsageError(f"output {path} is a file", hint="give a directory path with -o")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise UsageError(
            f"output directory {path} already exists and is not empty",
            hint="choose another with -o DIR, or pass --force to replace it",
        )


@contextmanager
def staged_output(path: Path, force: bool) -> Iterator[Path]:
    """A temporary sibling directory that becomes `path` only when the block succeeds."""
    check_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
        check_output(path, force)  # someone may have written there meanwhile
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def output_profile(
    source: ModelProfile, output: Path, name: str, quantization: str, description: str
) -> ModelProfile:
    """A vLLM model profile for the quantized checkpoint, keeping the source's architecture and sampling."""
    serving = ServingSettings(
        max_model_len=source.serving.max_model_len,
        quantization=quantization,  # type: ignore[arg-type]
        served_model_name=name,
    )
    return ModelProfile(
        kind="model",
        name=name,
        description=description,
        license=source.license,
        source=ModelSource(path=str(output)),
        architecture=source.architecture,
        engine="vllm",
        default_node=None,
        serving=serving,
        sampling=source.sampling,
    )


def profile_name(output: Path) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in output.name).strip("-._")
    return safe or "quantized"


def write_profile(profile: ModelProfile, force: bool) -> Path | None:
    """Write it under the user's profiles (`llmops serve NAME` then finds it); keep an existing file."""
    path = user_config_dir() / "profiles" / "models" / f"{profile.name}.yaml"
    if path.exists() and not force:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data = {"kind": "model", **data}
    header = f"# written by `llmops quantize` for {profile.source.path}\n"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path
