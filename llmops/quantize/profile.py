"""The model profile `quantize` writes for its output, so `llmops serve NAME` finds it.

Rules (issue 11; `llmops.profiles.ownership` says who owns a name and a file): the profile never shadows
a name that already resolves (a shipped or project profile, or an alias: its aliases would stop
resolving), never overwrites a profile llmops did not write, and the user is told where it went. The name
is the output folder's; when that is taken, the scheme is appended (`llama-3.1-8b` ->
`llama-3.1-8b-w4a16-g128`). An earlier profile llmops wrote for the same output, or one whose folder is
gone, is replaced. `--no-profile` writes none."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops.errors import UsageError
from llmops.paths import user_config_dir
from llmops.profiles.ownership import WRITTEN_BY, name_resolves, written_by_llmops
from llmops.profiles.schema import ModelProfile, ModelSource, ServingSettings

MAX_TRIES = 20


@dataclass(frozen=True)
class ProfileTarget:
    """Where the profile for an output will go, decided before any work."""

    name: str
    path: Path
    note: str | None = None  # why the name is not the output folder's, or that the folder is temporary


def profiles_dir() -> Path:
    return user_config_dir() / "profiles" / "models"


def folder_name(output: Path) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in output.name).strip("-._")
    return safe or "quantized"


def _source_path(path: Path) -> Path | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Path(data["source"]["path"])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None


def _replaceable(path: Path, output: Path) -> bool:
    """An llmops-written profile for this same output, or for a folder that no longer exists."""
    if not written_by_llmops(path):
        return False
    source = _source_path(path)
    return source is None or source == output or not source.exists()


def _free(catalog: Any, name: str, output: Path) -> bool:
    """The name resolves to nothing but, at most, our own replaceable profile file."""
    path = profiles_dir() / f"{name}.yaml"
    if path.exists() and not _replaceable(path, output):
        return False
    found = name_resolves(catalog, "model", name)
    return found is None or found.source.resolve() == path.resolve()


def choose_profile(catalog: Any, output: Path, scheme_slug: str) -> ProfileTarget:
    """The profile's name and file for `output`; never one that shadows or overwrites another."""
    base = folder_name(output)
    candidates = [base]
    longer = base if base.endswith(scheme_slug) else f"{base}-{scheme_slug}"
    candidates += [longer] + [f"{longer}-{i}" for i in range(2, MAX_TRIES)]
    for name in dict.fromkeys(candidates):
        if _free(catalog, name, output):
            note = None
            if name != base:
                note = (
                    f"the profile is named '{name}': '{base}' already names a model profile "
                    "(llmops never shadows or overwrites one it did not write)"
                )
            if output.is_relative_to(Path(tempfile.gettempdir()).resolve()):
                note = (note + "; " if note else "") + (
                    f"{output} is in a temporary folder: the profile goes stale when it is removed "
                    "(--no-profile skips it)"
                )
            return ProfileTarget(name, profiles_dir() / f"{name}.yaml", note)
    raise UsageError(
        f"no free profile name for {output} ('{base}' and {MAX_TRIES - 1} variants are taken)",
        hint="choose another -o folder name, or pass --no-profile",
    )


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


def write_profile(target: ProfileTarget, profile: ModelProfile, output: Path) -> Path | None:
    """Write it (atomically) unless, meanwhile, a file appeared there that is not ours to replace."""
    from llmops.output import write_output_file

    if target.path.exists() and not _replaceable(target.path, output):
        return None
    target.path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data = {"kind": "model", **data}
    header = f"{WRITTEN_BY} (quantize) for {output}; delete it when that folder is gone\n"
    write_output_file(target.path, header + yaml.safe_dump(data, sort_keys=False), force=True)
    return target.path
