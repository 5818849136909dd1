"""The issue's `cache:` / `guard:` example, through the workspace loader, and how settings merge."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from llmops.gateway.cache.config import CacheConfig, CacheSetting, effective
from llmops.gateway.config import gateway_section
from llmops.gateway.guard.config import GuardConfig
from llmops.gateway.guard.config import effective as guard_effective
from llmops.workspace import load_workspace

EXAMPLE = """
gateway:
  cache:
    exact: {ttl: 3600}
    semantic: {threshold: 0.95}
  guard: block              # off | log | block
  routes:
    - name: chat
      deployments: [{url: "http://127.0.0.1:8001/v1", model: stub-model}]
      cache: {semantic: false}   # per-route override
      guard: log
    - name: other
      deployments: [{url: "http://127.0.0.1:8001/v1", model: stub-model}]
"""


def test_the_issue_example_as_written(tmp_path: Path) -> None:
    cfg = tmp_path / "llmops.yaml"
    cfg.write_text(EXAMPLE)
    gw = gateway_section(load_workspace(cfg))
    chat, other = gw.routes
    c = effective(gw.cache, chat.cache)
    assert c.exact is not None and c.exact.ttl == 3600 and c.semantic is None and not c.nondeterministic
    o = effective(gw.cache, other.cache)
    assert o.semantic is not None and o.semantic.threshold == 0.95
    assert guard_effective(gw.guard, chat.guard).mode == "log"
    assert guard_effective(gw.guard, other.guard) == GuardConfig(mode="block", response="block")


def test_layers_take_true_false_or_a_mapping() -> None:
    setting = TypeAdapter(CacheSetting).validate_python
    assert effective(None, None).on is False  # nothing configured: no cache
    on = effective(setting(True), None)
    assert on.exact is not None and on.semantic is None
    assert effective(setting(False), None).on is False
    both = effective(setting({"semantic": True}), None)
    assert both.exact is not None and both.semantic is not None and both.semantic.verify
    route_off = CacheConfig.model_validate({"exact": False, "semantic": {"enabled": False}})
    assert effective(CacheConfig.model_validate({"semantic": True}), route_off).on is False
    allowed = effective(CacheConfig.model_validate({"nondeterministic": True}), CacheConfig())
    assert allowed.nondeterministic


def test_guard_modes_merge_key_by_key() -> None:
    section = GuardConfig.model_validate({"mode": "block", "rules": {"system_prompt_probe": "log"}})
    route = GuardConfig.model_validate({"response": "off", "rules": {"repeat_above": "off"}})
    merged = guard_effective(section, route)
    assert merged.mode == "block" and merged.response == "off"
    assert merged.rules == {"system_prompt_probe": "log", "repeat_above": "off"}
    assert guard_effective(None, None).mode == "off"
    assert GuardConfig.model_validate({"mode": False}).mode == "off"  # YAML's bare `off`
