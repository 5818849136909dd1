"""The one settings resolver: each value by explicit precedence, remembering where it came from.

Precedence everywhere: flags the user set > environment (`LLMOPS_*`) > workspace file (llmops.yaml) >
profile (the model's, then the node's) > built-in default. `--dry-run` shows every value with its origin in one document shape,
`{"command": ..., "settings": {name: {"value": ..., "origin": ...}}, ...}`.

Environment variables: `LLMOPS_MODEL`, `LLMOPS_NODE`, `LLMOPS_PROVIDER` for the workspace's top-level
defaults, and `LLMOPS_<SECTION>_<NAME>` for a command's setting (`LLMOPS_BENCH_MAX_CONCURRENCY=16`,
`LLMOPS_SERVE_PORT=8001`), parsed with the type the workspace file gives that key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Origin = Literal["flag", "env", "workspace", "profile", "node", "checkpoint", "derived", "default"]
ENV_PREFIX = "LLMOPS_"
_AUTO: Any = object()


@dataclass(frozen=True)
class Setting(Generic[T]):
    value: T
    origin: Origin


def env_var(section: str | None, name: str) -> str:
    """The environment variable for a setting: LLMOPS_<SECTION>_<NAME> (LLMOPS_<NAME> at the top level)."""
    parts = [section, name] if section else [name]
    return ENV_PREFIX + "_".join(p.upper().replace("-", "_") for p in parts)


def pick(
    flag: Any = None,
    *,
    env: str | None = None,
    workspace: Any = None,
    profile: Any = None,
    default: Any = None,
    cast: Callable[[str], Any] | None = None,
    node: Any = None,
) -> Setting:
    """The first value that is set, in the order flag > env > workspace > profile > node > default
    (`profile` is the model profile, `node` the node profile)."""
    if flag is not None:
        return Setting(flag, "flag")
    if env and (raw := os.environ.get(env)) not in (None, ""):
        return Setting(_parse_env(env, raw, cast), "env")
    if workspace is not None:
        return Setting(workspace, "workspace")
    if profile is not None:
        return Setting(profile, "profile")
    if node is not None:
        return Setting(node, "node")
    return Setting(default, "default")


def _parse_env(var: str, raw: str, cast: Callable[[str], Any] | None) -> Any:
    if cast is None:
        return raw
    from llmops.errors import UsageError

    try:
        return cast(raw)
    except (ValueError, TypeError) as exc:
        reason = _first_pydantic_message(exc) or str(exc)
        raise UsageError(
            f"environment variable {var}={raw!r} is invalid: {reason}",
            hint=f"fix or unset {var}",
        ) from None


def _first_pydantic_message(exc: Exception) -> str | None:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return str(errors()[0]["msg"])
        except Exception:
            return None
    return None


def field_parser(model: Any, name: str) -> Callable[[str], Any] | None:
    """A parser for an environment string by the type a pydantic model gives `name` (None: keep the string)."""
    cls = model if isinstance(model, type) else type(model)
    fields = getattr(cls, "model_fields", {})
    field = fields.get(name)
    if field is None:
        return None
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    # The field's constraints (Field(ge=...), PositiveInt) travel in its metadata: keep them.
    annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    adapter = TypeAdapter(annotation)
    text = str(field.annotation)
    if "dict" in text or "list" in text:
        return adapter.validate_json

    def parse(raw: str) -> Any:
        try:
            return adapter.validate_python(raw)
        except ValidationError as first:
            try:  # a number where only numbers are allowed, e.g. Literal[4, 8] from "8"
                return adapter.validate_json(raw)
            except ValidationError:
                raise first from None

    return parse


def jsonable(value: Any) -> Any:
    """A setting's value as JSON: paths as strings, tuples as lists, pydantic models dumped."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


class Resolved(dict[str, Setting]):
    """Every resolved setting by name; the one type every command's plan carries."""

    def value(self, name: str, default: Any = None) -> Any:
        setting = self.get(name)
        return default if setting is None else setting.value

    def origin(self, name: str) -> str | None:
        setting = self.get(name)
        return None if setting is None else setting.origin

    def values(self) -> dict[str, Any]:  # type: ignore[override]
        return {k: s.value for k, s in self.items()}

    def as_json(self) -> dict[str, dict[str, Any]]:
        """{name: {"value": ..., "origin": ...}}: the settings part of every --dry-run --json."""
        return {k: {"value": jsonable(s.value), "origin": s.origin} for k, s in self.items()}

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, value, origin) for a --dry-run table."""
        return [(k, "" if s.value is None else str(jsonable(s.value)), s.origin) for k, s in self.items()]


class Resolver:
    """Resolve one command's settings; each `take` records the value and its origin in `resolved`.

    `section` names the workspace section and the environment prefix; `workspace` is that section's
    model (llmops.yaml), whose field of the same name is the workspace value unless given explicitly.
    """

    def __init__(self, section: str | None = None, workspace: Any = None) -> None:
        self.section = section
        self.workspace = workspace
        self.resolved = Resolved()

    def take(
        self,
        name: str,
        flag: Any = None,
        *,
        workspace: Any = _AUTO,
        profile: Any = None,
        default: Any = None,
        env: str | Literal[False] | None = _AUTO,
        cast: Callable[[str], Any] | None = None,
        node: Any = None,
    ) -> Any:
        """The value of `name` by flag > env > workspace > profile > default; remembered with its origin."""
        if workspace is _AUTO:
            workspace = getattr(self.workspace, name, None) if self.workspace is not None else None
        var = env_var(self.section, name) if env is _AUTO else (env or None)
        if cast is None and var and self.workspace is not None:
            cast = field_parser(self.workspace, name)
        setting = pick(
            flag, env=var, workspace=workspace, profile=profile, node=node, default=default, cast=cast
        )
        self.resolved[name] = setting
        return setting.value

    def set(self, name: str, value: Any, origin: Origin) -> Any:
        """Record a value found another way (derived, read from a checkpoint)."""
        self.resolved[name] = Setting(value, origin)
        return value


def resolve_model_node(
    catalog: Any,
    workspace: Any,
    model: str | None,
    node: str | None = None,
    *,
    resolver: Resolver | None = None,
    need_node: bool = True,
) -> tuple[Any, Any]:
    """The model and node every command uses: model flag > $LLMOPS_MODEL > workspace > smollm2;
    node flag > $LLMOPS_NODE > workspace > the model's default_node > local-cpu. Returns Loaded profiles."""
    from llmops.workspace import DEFAULT_MODEL, DEFAULT_NODE

    r = resolver or Resolver()
    model_name = r.take("model", model, workspace=workspace.model, default=DEFAULT_MODEL, env="LLMOPS_MODEL")
    loaded_model = catalog.model(model_name)
    if not need_node:
        return loaded_model, None
    node_name = r.take(
        "node",
        node,
        workspace=workspace.node,
        profile=loaded_model.profile.default_node,
        default=DEFAULT_NODE,
        env="LLMOPS_NODE",
    )
    return loaded_model, catalog.node(node_name)


def dry_run_document(command: str, resolved: Mapping[str, Setting], **extra: Any) -> dict[str, Any]:
    """The one --dry-run --json shape: the command, every setting as {value, origin}, then extras."""
    settings = resolved.as_json() if isinstance(resolved, Resolved) else Resolved(resolved).as_json()
    return {"command": command, "settings": settings, **extra}
