"""Read YAML keeping each value's line, and turn pydantic errors into file:line problems."""

from __future__ import annotations

import errno
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


MAX_BYTES = 1024 * 1024  # profiles and llmops.yaml are a few KiB; anything larger is not one
MAX_NODES = 100_000  # values after expanding aliases: a YAML alias bomb expands to billions


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document holds once every alias is expanded (each anchor counted once)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _Refused("an alias refers to the value that contains it (a recursive alias)")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        open_nodes.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root)


class _Refused(Exception):
    """A file llmops will not expand: too big, binary, or an alias bomb."""


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise _Refused(f"the file is {size:,} bytes; a profile or llmops.yaml is at most {MAX_BYTES:,}")
    data = path.read_bytes()
    if b"\0" in data:
        raise _Refused("this is a binary file, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(f"this is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse once: the node tree (for lines) and the data, refusing documents that expand without bound."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if _expanded_size(node) > MAX_NODES:
            raise _Refused(
                f"the YAML expands to more than {MAX_NODES:,} values through its aliases (&anchor/*alias); "
                "write the values out instead"
            )
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: Path) -> SourceDoc:
    """Parse one YAML file; a syntax error, a binary or oversized file or an alias bomb becomes a Problem."""
    from llmops.errors import ProfileProblems

    def problem(line: int | None, message: str) -> ProfileProblems:
        return ProfileProblems([Problem(str(path), line, None, message)])

    try:
        node, data = _compose(_read_text(path))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise problem(None, "cannot read: a symbolic link loop; fix or remove the link") from None
        raise problem(None, f"cannot read: {exc.strerror}") from exc
    except _Refused as exc:
        raise problem(None, str(exc)) from None
    except RecursionError:
        raise problem(None, "the YAML is nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or str(exc)
        if exc.context:
            reason = f"{reason} ({exc.context})"
        raise problem(
            mark.line + 1 if mark else None,
            f"invalid YAML: {reason}; check the indentation and the ':' after each key",
        ) from exc
    except yaml.YAMLError as exc:
        raise problem(None, f"invalid YAML: {exc}") from exc
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return SourceDoc(path, data, lines)


def problems_from_validation(
    exc: ValidationError, doc: SourceDoc, model: type[BaseModel], prefix: Loc = ()
) -> list[Problem]:
    """One Problem per pydantic error, with the dotted field path and the YAML line. `prefix` is where
    `model`'s mapping sits in the document (a section validated on its own, e.g. ("gateway",))."""
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = field_path((*prefix, *loc)) or None
        problems.append(
            Problem(str(doc.path), doc.line_of((*prefix, *loc)), field, field_message(err, model))
        )
    return problems
