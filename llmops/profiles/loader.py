"""Find, parse and resolve profiles across the search path.

Search order (first wins for a name): --profiles-dir, $LLMOPS_PROFILES, ./configs,
the user config dir, the profiles shipped with llmops.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import ValidationError

from llmops.errors import NotFoundError, Problem, ProfileProblems
from llmops.paths import real_path, shipped_configs_dir, user_config_dir
from llmops.profiles.schema import (
    FOLDER_KINDS,
    PROFILE_CLASSES,
    ModelProfile,
    NodeProfile,
    ProfileBase,
    ProfileKind,
    ProviderProfile,
)
from llmops.profiles.yamlsrc import SourceDoc, load_yaml, problems_from_validation

P = TypeVar("P", bound=ProfileBase)
YAML_SUFFIXES = (".yaml", ".yml")
LIST_HINT = "`llmops profiles list` shows all"


@dataclass(frozen=True)
class Loaded(Generic[P]):
    """A validated profile and the file it came from."""

    profile: P
    source: Path


def search_dirs(profiles_dir: Path | None = None) -> list[Path]:
    dirs: list[Path] = []
    if profiles_dir:
        dirs.append(profiles_dir)
    for part in os.environ.get("LLMOPS_PROFILES", "").split(os.pathsep):
        if part:
            dirs.append(Path(part))
    dirs += [Path.cwd() / "configs", user_config_dir() / "profiles", shipped_configs_dir()]
    seen: set[Path] = set()
    unique = []
    for d in dirs:
        key = real_path(d)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def kind_of(doc: SourceDoc) -> ProfileKind | None:
    """A file's kind: its `kind:` key, else its folder (nodes/, models/, providers/)."""
    if isinstance(doc.data, dict) and doc.data.get("kind") in PROFILE_CLASSES:
        return doc.data["kind"]
    return FOLDER_KINDS.get(doc.path.parent.name)


def parse_profile(path: Path, kind: ProfileKind | None = None) -> Loaded[ProfileBase]:
    """Load and validate one profile file; every problem in it is raised together."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ProfileProblems(
            [Problem(str(path), 1, None, "expected a mapping of keys (name:, ...) at the top")]
        )
    kind = kind or kind_of(doc)
    if kind is None:
        given = doc.data.get("kind")
        why = f"unknown kind {given!r}" if given else "cannot tell the profile's kind"
        raise ProfileProblems(
            [
                Problem(
                    str(path),
                    doc.line_of(("kind",)),
                    "kind",
                    f"{why}; add `kind: node|model|provider` or put it under nodes/, models/ or providers/",
                )
            ]
        )
    cls = PROFILE_CLASSES[kind]
    try:
        profile = cls.model_validate(doc.data)
    except ValidationError as exc:
        raise ProfileProblems(problems_from_validation(exc, doc, cls)) from exc
    return Loaded(profile, path)


def profile_files(directory: Path) -> list[Path]:
    """YAML files in a profiles folder: its nodes/, models/, providers/ subfolders."""
    files: list[Path] = []
    for sub in FOLDER_KINDS:
        folder = directory / sub
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES)
    return files


@dataclass
class Catalog:
    """Every profile visible from the search path; the first directory wins for a name."""

    dirs: list[Path]
    _loaded: dict[ProfileKind, dict[str, Loaded]] = field(default_factory=dict)
    _every: dict[ProfileKind, list[Loaded]] = field(default_factory=dict)  # shadowed ones too

    @classmethod
    def discover(cls, profiles_dir: Path | None = None) -> Catalog:
        return cls(search_dirs(profiles_dir))

    def all(self, kind: ProfileKind) -> list[Loaded]:
        return list(self._by_name(kind).values())

    def _by_name(self, kind: ProfileKind) -> dict[str, Loaded]:
        if kind not in self._loaded:
            found: dict[str, Loaded] = {}
            every: list[Loaded] = []
            problems: list[Problem] = []
            folder = {v: k for k, v in FOLDER_KINDS.items()}[kind]
            for directory in self.dirs:
                sub = directory / folder
                if not sub.is_dir():
                    continue
                for path in sorted(p for p in sub.iterdir() if p.suffix in YAML_SUFFIXES):
                    try:
                        loaded = parse_profile(path, kind)
                    except ProfileProblems as exc:
                        problems += exc.problems
                        continue
                    found.setdefault(loaded.profile.name, loaded)
                    every.append(loaded)
            if problems:
                raise ProfileProblems(problems)
            self._loaded[kind] = found
            self._every[kind] = every
        return self._loaded[kind]

    def shadows(self, kind: ProfileKind) -> list[tuple[Loaded, Loaded, str]]:
        """(user profile, shipped profile, name) for each shipped name or alias a user profile also claims:
        the user's file wins, so the shipped one no longer resolves by that name."""
        self._by_name(kind)
        shipped_dir = real_path(shipped_configs_dir())
        shipped = [x for x in self._every[kind] if real_path(x.source).is_relative_to(shipped_dir)]
        found = []
        for user in self._every[kind]:
            if real_path(user.source).is_relative_to(shipped_dir):
                continue
            claims = {user.profile.name, *user.profile.aliases}
            for builtin in shipped:
                for name in sorted(claims & {builtin.profile.name, *builtin.profile.aliases}):
                    found.append((user, builtin, name))
        return found

    def names(self, kind: ProfileKind) -> list[str]:
        names = []
        for loaded in self.all(kind):
            names += [loaded.profile.name, *loaded.profile.aliases]
        return names

    def get(self, kind: ProfileKind, name: str) -> Loaded:
        """Resolve a name or alias (or a path to a YAML file) to a loaded profile."""
        as_path = Path(name)
        if as_path.suffix in YAML_SUFFIXES and (as_path.is_file() or as_path.is_symlink()):
            return parse_profile(as_path, kind)
        by_name = self._by_name(kind)
        if name in by_name:
            return by_name[name]
        for loaded in by_name.values():
            if name in loaded.profile.aliases:
                return loaded
        close = difflib.get_close_matches(name, self.names(kind), n=3, cutoff=0.5)
        suggestion = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise NotFoundError(f"{kind} '{name}' not found", hint=f"{suggestion}{LIST_HINT}")

    def node(self, name: str) -> Loaded[NodeProfile]:
        return self.get("node", name)

    def provider(self, name: str) -> Loaded[ProviderProfile]:
        return self.get("provider", name)

    def model(self, name: str) -> Loaded[ModelProfile]:
        """A model profile by name or alias, or built from a checkpoint directory or GGUF file on disk."""
        path = Path(name)
        if path.exists() and (path.is_dir() or path.suffix == ".gguf"):
            from llmops.profiles.checkpoint import model_from_path

            return Loaded(model_from_path(path), path)
        return self.get("model", name)
