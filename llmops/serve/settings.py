"""Resolve every serving setting from flags > workspace > profile > defaults, keeping each value's origin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llmops.errors import UsageError
from llmops.profiles.schema import ModelProfile, NodeProfile, ServingSettings
from llmops.settings import Setting, pick
from llmops.workspace import ServeSection

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_READY_TIMEOUT = 120.0
# Settings that are not engine settings of the profile but belong to a serve run.
RUN_KEYS = ("engine", "host", "port", "ready_timeout")
SERVING_KEYS = tuple(ServingSettings.model_fields)


@dataclass
class ServeSettings:
    """Every value a launch needs, each with where it came from (flag, workspace, profile, default)."""

    model: ModelProfile
    node: NodeProfile
    values: dict[str, Setting] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    def get(self, key: str, default: Any = None) -> Any:
        setting = self.values.get(key)
        return default if setting is None or setting.value is None else setting.value

    @property
    def engine(self) -> str:
        return self["engine"]

    @property
    def tp(self) -> int:
        return self["tensor_parallel_size"]

    @property
    def pp(self) -> int:
        return self["pipeline_parallel_size"]

    @property
    def served_name(self) -> str:
        return self["served_model_name"]

    def origins(self) -> dict[str, dict[str, Any]]:
        """{setting: {value, origin}} for --dry-run and --json."""
        return {k: {"value": s.value, "origin": s.origin} for k, s in self.values.items()}


def resolve_settings(
    model: ModelProfile,
    node: NodeProfile,
    overrides: dict[str, Any] | None = None,
    workspace: ServeSection | None = None,
) -> ServeSettings:
    """Merge overrides (flags the user set; None = not set) over the workspace and the profiles."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(flags) - set(SERVING_KEYS) - set(RUN_KEYS))
    if unknown:
        raise UsageError(
            f"unknown serve setting(s): {', '.join(unknown)}",
            hint=f"known: {', '.join((*RUN_KEYS, *SERVING_KEYS))}",
        )
    ws = workspace or ServeSection()
    serving = model.serving
    explicit = serving.model_fields_set
    values: dict[str, Setting] = {
        "engine": pick(flags.get("engine"), workspace=ws.engine, profile=model.engine),
        "host": pick(flags.get("host"), workspace=ws.host, default=DEFAULT_HOST),
        "port": pick(flags.get("port"), workspace=ws.port, default=DEFAULT_PORT),
        "ready_timeout": pick(
            flags.get("ready_timeout"), workspace=ws.ready_timeout_s, default=DEFAULT_READY_TIMEOUT
        ),
    }
    for key in SERVING_KEYS:
        value = getattr(serving, key)
        values[key] = pick(flags.get(key), profile=value if key in explicit else None, default=value)
    if values["served_model_name"].value is None:
        values["served_model_name"] = Setting(model.name, "default")
    if values["n_threads"].value is None:
        values["n_threads"] = Setting(node.cpu.cores, "profile")  # the node's cores
    # Validate the merged engine settings with the profile's own schema, so a bad flag is a clear error.
    try:
        ServingSettings.model_validate({k: values[k].value for k in SERVING_KEYS})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0])
        where = (
            f"--{key.replace('_', '-')}" if values[key].origin == "flag" else f"{values[key].origin} {key}"
        )
        raise UsageError(
            f"invalid {where} = {values[key].value!r}: {first['msg']}",
            hint="`llmops serve --help` lists the accepted values",
        ) from None
    return ServeSettings(model=model, node=node, values=values)
