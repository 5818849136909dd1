"""Validate profile files and folders, collecting every problem instead of stopping at the first."""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path

from pydantic import BaseModel

from llmops.errors import Problem, ProfileProblems
from llmops.profiles.loader import YAML_SUFFIXES, Catalog, Loaded, parse_profile, profile_files
from llmops.profiles.schema import ModelProfile, ProfileKind
from llmops.profiles.yamlsrc import load_yaml


class ValidationReport(BaseModel):
    files: list[str]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _expand(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files += profile_files(path) or sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES)
        elif path.is_file() or path.is_symlink():  # a broken link or a loop: reading it says which
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, "no such file or folder"))
    return files, problems


def _known_names(loaded: list[Loaded], catalog: Catalog | None, kind: ProfileKind) -> set[str]:
    names = {n for item in loaded for n in (item.profile.name, *item.profile.aliases) if _kind(item) == kind}
    if catalog is not None:
        # problems in other folders are reported when those folders are validated
        with contextlib.suppress(ProfileProblems):
            names |= set(catalog.names(kind))
    return names


def _kind(item: Loaded) -> str:
    return type(item.profile).__name__.removesuffix("Profile").lower()


def _cross_references(loaded: list[Loaded], catalog: Catalog | None) -> list[Problem]:
    """Names that must resolve (a model's default_node) and aliases claimed twice in one kind."""
    problems: list[Problem] = []
    nodes = _known_names(loaded, catalog, "node")
    claimed: dict[tuple[str, str], Path] = {}
    for item in loaded:
        doc = load_yaml(item.source)
        for alias in (item.profile.name, *item.profile.aliases):
            key = (_kind(item), alias)
            if key in claimed and claimed[key] != item.source:
                problems.append(
                    Problem(
                        str(item.source),
                        doc.line_of(("aliases",)) or doc.line_of(("name",)),
                        "aliases",
                        f"'{alias}' is already a name or alias in {claimed[key]}",
                    )
                )
            claimed.setdefault(key, item.source)
        if isinstance(item.profile, ModelProfile) and item.profile.default_node:
            node = item.profile.default_node
            if node not in nodes:
                close = difflib.get_close_matches(node, sorted(nodes), n=1)
                fix = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else "`llmops profiles list --kind node` shows the nodes"
                )
                problems.append(
                    Problem(
                        str(item.source),
                        doc.line_of(("default_node",)),
                        "default_node",
                        f"unknown node '{node}'; {fix}",
                    )
                )
    return problems


def validate_paths(paths: list[Path], catalog: Catalog | None = None) -> ValidationReport:
    """Every file under `paths` parsed and validated (kind from `kind:` or its folder), then cross-checked."""
    files, problems = _expand(paths)
    loaded: list[Loaded] = []
    for path in files:
        try:
            loaded.append(parse_profile(path))
        except ProfileProblems as exc:
            problems += sorted(exc.problems, key=lambda p: p.line or 0)
    problems += _cross_references(loaded, catalog)
    return ValidationReport(files=[str(f) for f in files], problems=problems)
