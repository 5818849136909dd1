"""Validate profile files and folders, collecting every problem instead of stopping at the first."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from llmops.errors import Problem, ProfileProblems
from llmops.profiles.loader import YAML_SUFFIXES, parse_profile, profile_files


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
            found = profile_files(path) or sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES)
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, "no such file or folder"))
    return files, problems


def validate_paths(paths: list[Path]) -> ValidationReport:
    """Every file under `paths` parsed and validated; a file's kind from `kind:` or its folder."""
    files, problems = _expand(paths)
    for path in files:
        try:
            parse_profile(path)
        except ProfileProblems as exc:
            problems += exc.problems
    return ValidationReport(files=[str(f) for f in files], problems=problems)
