"""Read YAML keeping each value's line, and turn pydantic errors into file:line problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from llmops.errormap import field_message, field_path
from llmops.errors import Problem

Loc = tuple[str | int, ...]


class SourceDoc:
    """A parsed YAML document and the line (1-based) where each key path starts."""

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest part of `loc` the file actually contains."""
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in self.lines:
                return self.lines[loc[:cut]]
        return None


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, str(key.value))
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines)


def load_yaml(path: Path) -> SourceDoc:
    """Parse one YAML file; a syntax error becomes a Problem with its line."""
    from llmops.errors import ProfileProblems

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileProblems([Problem(str(path), None, None, f"cannot read: {exc.strerror}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        if exc.context:
            reason = f"{reason} ({exc.context})"
        raise ProfileProblems(
            [
                Problem(
                    str(path),
                    line,
                    None,
                    f"invalid YAML: {reason}; check the indentation and the ':' after each key",
                )
            ]
        ) from exc
    except yaml.YAMLError as exc:
        raise ProfileProblems([Problem(str(path), None, None, f"invalid YAML: {exc}")]) from exc
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return SourceDoc(path, data, lines)


def problems_from_validation(exc: ValidationError, doc: SourceDoc, model: type[BaseModel]) -> list[Problem]:
    """One Problem per pydantic error, with the dotted field path and the YAML line."""
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = field_path(loc) or None
        problems.append(Problem(str(doc.path), doc.line_of(loc), field, field_message(err, model)))
    return problems
