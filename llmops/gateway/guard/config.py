"""The `guard:` setting of the gateway section and of each route: `off | log | block`, or a mapping.

    guard: block                         # every rule blocks
    guard:
      mode: block
      response: log                      # the leak check on replies (default: as mode)
      rules: {system_prompt_probe: log}  # per-rule action
    routes:
      - name: chat
        guard: log                       # a route's setting overrides the section's, key by key

YAML reads a bare `off` as false: both mean off; `true` means block.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from llmops.gateway.guard.rules import rule_names
from llmops.profiles.schema import StrictModel

Action = Literal["off", "log", "block"]


def _action(value: Any) -> Any:
    if value is False:
        return "off"
    if value is True:
        return "block"
    return value


GuardAction = Annotated[Action, BeforeValidator(_action)]


class GuardConfig(StrictModel):
    """The guard's mapping form; every field unset means 'as the section (or the default, off)'."""

    mode: GuardAction | None = Field(default=None, description="off | log | block for the request rules")
    response: GuardAction | None = Field(
        default=None, description="off | log | block for the leak check on replies (default: mode)"
    )
    rules: dict[str, GuardAction] = Field(default_factory=dict, description="per-rule action by rule name")

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules: dict[str, Action]) -> dict[str, Action]:
        known = rule_names()
        for name in rules:
            if name not in known:
                raise ValueError(f"unknown guard rule '{name}'; rules: {', '.join(known)}")
        return rules


GuardSetting = Annotated[
    GuardConfig | None,
    BeforeValidator(lambda v: v if v is None or isinstance(v, dict | GuardConfig) else {"mode": v}),
]


def effective(section: GuardConfig | None, route: GuardConfig | None) -> GuardConfig:
    """The route's guard: its own keys over the section's, with mode defaulting to off."""
    section = section or GuardConfig()
    route = route or GuardConfig()
    mode = route.mode or section.mode or "off"
    response = route.response or section.response or mode
    return GuardConfig(mode=mode, response=response, rules={**section.rules, **route.rules})
