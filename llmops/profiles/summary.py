"""One-line summaries of profiles, and lookup of a name across all kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.errors import NotFoundError, UsageError
from llmops.profiles.loader import LIST_HINT, Catalog, Loaded
from llmops.profiles.schema import ModelProfile, NodeProfile, ProfileKind, ProviderProfile


def one_line(profile: Any) -> str:
    if isinstance(profile, NodeProfile):
        hw = (
            f"{profile.gpu.count} x {profile.gpu.model} ({profile.gpu.memory_gib:g} GiB)"
            if profile.gpu
            else "CPU only"
        )
        pool = f", {profile.count} nodes" if profile.count > 1 else ""
        return f"{hw}; {profile.cpu.cores} cores, {profile.cpu.ram_gib:g} GiB RAM{pool}"
    if isinstance(profile, ModelProfile):
        arch = profile.architecture
        size = f"{arch.num_params / 1e9:.3g}B params, " if arch and arch.num_params else ""
        return f"{size}{profile.engine} on {profile.default_node or '-'}; {profile.source.describe()}"
    if isinstance(profile, ProviderProfile):
        key = f", key ${profile.api_key_env}" if profile.api_key_env else ""
        return f"{profile.api} API, {len(profile.models)} models{key}"
    return ""


def stale_reason(profile: Any) -> str | None:
    """Why a model profile no longer works on this machine: the local files it points at are gone."""
    if not isinstance(profile, ModelProfile):
        return None
    src = profile.source
    local = [("source.path", src.path), ("source.gguf", None if src.package else src.gguf)]
    local.append(("config", profile.config))
    for key, value in local:
        if value and not Path(value).expanduser().exists():
            return f"{key} {value} is gone"
    return None


def summarize(loaded: Loaded) -> dict[str, Any]:
    p = loaded.profile
    return {
        "name": p.name,
        "aliases": list(p.aliases),
        "summary": one_line(p),
        "file": display_path(loaded.source),
        "stale": stale_reason(p),
    }


def shadow_warnings(catalog: Catalog, kinds: list[ProfileKind], files: list[Path] | None = None) -> list[str]:
    """One line per shipped name a user profile takes over (only for `files`, when given)."""
    from llmops.paths import real_path

    wanted = {real_path(f) for f in files} if files is not None else None
    lines = []
    for kind in kinds:
        for user, builtin, name in catalog.shadows(kind):
            if wanted is not None and real_path(user.source) not in wanted:
                continue
            lines.append(
                f"{display_path(user.source)} shadows the shipped {kind} '{name}' "
                f"({display_path(builtin.source)}): '{name}' now means the file above"
            )
    return lines


def display_path(path: Path) -> str:
    """Relative to the working directory when that is shorter; shipped profiles as 'builtin:...'."""
    from llmops.paths import real_path, shipped_configs_dir

    resolved = real_path(path)
    for base, label in ((real_path(shipped_configs_dir()), "builtin:"), (real_path(Path.cwd()), "")):
        if resolved.is_relative_to(base):
            return label + str(resolved.relative_to(base))
    return str(path)


def find_any(catalog: Catalog, name: str, kind: ProfileKind | None = None) -> tuple[ProfileKind, Loaded]:
    """Resolve a name in one kind, or in whichever kind has it."""
    kinds: list[ProfileKind] = [kind] if kind else ["model", "node", "provider"]
    if kind and kind not in ("model", "node", "provider"):
        raise UsageError(f"unknown kind '{kind}'", hint="use node, model or provider")
    misses: list[NotFoundError] = []
    for k in kinds:
        try:
            return k, catalog.get(k, name)
        except NotFoundError as exc:
            misses.append(exc)
    if len(misses) == 1:
        raise misses[0]
    hints = [m.hint for m in misses if m.hint and "did you mean" in m.hint]
    raise NotFoundError(f"no profile named '{name}'", hint=hints[0] if hints else LIST_HINT)
