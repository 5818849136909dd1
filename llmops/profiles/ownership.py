"""Who owns a profile name and a profile file: for code that writes profiles (quantize) and for listings.

A profile llmops writes starts with the line `# written by llmops` (quantize's earlier
"# written by `llmops quantize` ..." header counts too). `check_profile_target` is the one check a writer
calls before writing: never shadow a name that already resolves elsewhere, never overwrite a file that
llmops did not write.
"""

from __future__ import annotations

from pathlib import Path

from llmops.errors import NotFoundError, UsageError
from llmops.profiles.loader import Catalog, Loaded
from llmops.profiles.schema import ProfileKind

WRITTEN_BY = "# written by llmops"
_HEADERS = (WRITTEN_BY, "# written by `llmops")


def written_by_llmops(path: Path) -> bool:
    """Whether the file's first line is llmops's header (a file that cannot be read is not llmops's)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except OSError:
        return False
    return first.startswith(_HEADERS)


def name_resolves(catalog: Catalog, kind: ProfileKind, name: str) -> Loaded | None:
    """The profile a name or alias resolves to now, or None."""
    try:
        return catalog.get(kind, name)
    except NotFoundError:
        return None


def check_profile_target(catalog: Catalog, kind: ProfileKind, name: str, path: Path) -> None:
    """Refuse to write profile `name` to `path` when that would shadow another profile or overwrite a
    file llmops did not write (exit 2, naming the file in the way)."""
    from llmops.paths import real_path
    from llmops.profiles.summary import display_path

    found = name_resolves(catalog, kind, name)
    if found is not None and real_path(found.source) != real_path(path):
        raise UsageError(
            f"{kind} name '{name}' already resolves to {display_path(found.source)}; "
            f"writing {path} would shadow it",
            hint="choose another name, or skip writing the profile",
        )
    if path.exists() and not written_by_llmops(path):
        raise UsageError(
            f"{path} exists and was not written by llmops; it is left as it is",
            hint="choose another name, or move that file away yourself",
        )
