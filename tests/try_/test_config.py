"""Resolving a try: precedence with presets, dialect checks before anything is sent, request bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.errors import EnvironmentMissing, ProfileProblems, UsageError
from llmops.profiles.loader import Catalog
from llmops.tryout import TryFlags, request_body, resolve
from llmops.workspace import Workspace, load_workspace

FAKE = "http://127.0.0.1:9/v1"


def plan_of(ws: dict | None = None, **flags):
    flags.setdefault("prompt", "hi")
    return resolve(TryFlags(**flags), Workspace.model_validate(ws or {}), Catalog.discover(None))


def test_profile_defaults_then_workspace_then_env_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    p = plan_of(model_ref="smollm2")  # the profile's sampling: temperature 0.2, top_p 0.9, max_tokens 128
    s = p.settings
    assert (s["temperature"].value, s["temperature"].origin) == (0.2, "profile")
    assert (s["max_tokens"].value, s["max_tokens"].origin) == (128, "profile")
    assert p.needs_server and p.dialect.name == "llamacpp" and s["node"].value == "local-cpu"

    p = plan_of({"try": {"temperature": 0.5}}, model_ref="smollm2")
    assert (p.settings["temperature"].value, p.settings["temperature"].origin) == (0.5, "workspace")
    monkeypatch.setenv("LLMOPS_TRY_TEMPERATURE", "0.6")
    p = plan_of({"try": {"temperature": 0.5}}, model_ref="smollm2")
    assert (p.settings["temperature"].value, p.settings["temperature"].origin) == (0.6, "env")
    p = plan_of({"try": {"temperature": 0.5}}, model_ref="smollm2", sampling={"temperature": 0.0})
    assert (p.settings["temperature"].value, p.settings["temperature"].origin) == (0.0, "flag")
    monkeypatch.setenv("LLMOPS_TRY_TEMPERATURE", "-1")
    with pytest.raises(UsageError, match="LLMOPS_TRY_TEMPERATURE"):
        plan_of(model_ref="smollm2")


def test_a_preset_sits_just_below_the_explicit_values_of_its_layer() -> None:
    p = plan_of(model_ref="smollm2", preset="creative", sampling={"temperature": 0.5})
    s = p.settings
    assert (s["temperature"].value, s["temperature"].origin) == (0.5, "flag")  # explicit flag wins
    assert (s["top_k"].value, s["top_k"].origin) == (100, "flag")  # from the preset given as a flag
    assert (s["top_p"].value, s["top_p"].origin) == (0.95, "flag")  # preset beats the profile's 0.9
    # a preset from the workspace does not override an environment value, but beats the profile
    p = plan_of({"try": {"preset": "exact"}}, model_ref="smollm2")
    assert (p.settings["temperature"].value, p.settings["temperature"].origin) == (0.0, "workspace")
    explore = plan_of(model_ref="smollm2", preset="explore")
    assert explore.answers_per_variant == 5 and explore.settings["n"].origin == "flag"


def test_unknown_preset_is_exit_2() -> None:
    with pytest.raises(UsageError, match="unknown preset 'wild'"):
        plan_of(model_ref="smollm2", preset="wild")


def test_a_flag_the_endpoint_does_not_support_is_refused_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-printed")
    with pytest.raises(UsageError) as exc:
        plan_of(model_ref="gpt-4o-mini", target=FAKE, sampling={"top_k": 40})
    msg = exc.value.render()
    assert "--top-k" in msg and "the OpenAI API does not support top_k" in msg and "nothing was sent" in msg
    assert "sk-test" not in msg


def test_preset_values_an_api_lacks_are_dropped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    p = plan_of(model_ref="gpt-4o-mini", target=FAKE, preset="exact")
    v = p.variants[0]
    assert "top_k" not in v.values and v.values["temperature"].value == 0.0
    assert any("top_k 1" in n and "not sent" in n for n in v.notes)
    assert p.prices is not None and p.prices.input_per_1m == 0.15 and p.api_key == "sk-test"


def test_anthropic_ranges_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with pytest.raises(UsageError, match=r"out of range for the Anthropic Messages API"):
        plan_of(model_ref="claude-haiku-4-5", sampling={"temperature": 1.5})
    p = plan_of(
        model_ref="claude-haiku-4-5", preset="creative", sampling={"stop": ["END"]}, system="Be brief."
    )
    v = p.variants[0]
    assert v.values["temperature"].value == 1.0 and any("sent as 1" in n for n in v.notes)
    body = request_body(p, v, "claude-haiku-4-5")
    assert body["stop_sequences"] == ["END"] and body["top_k"] == 100 and body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "hi"}] and body["stream"] is True
    with pytest.raises(UsageError, match="does not return log-probabilities"):
        plan_of(model_ref="claude-haiku-4-5", logprobs=2)


def test_provider_model_without_its_key_is_exit_3() -> None:
    with pytest.raises(EnvironmentMissing, match=r"\$OPENAI_API_KEY"):
        plan_of(model_ref="gpt-4o-mini")


def test_llamacpp_body_uses_its_own_names_and_asks_for_logprobs() -> None:
    p = plan_of(model_ref="smollm2", sampling={"repetition_penalty": 1.3, "seed": 7}, logprobs=3)
    body = request_body(p, p.variants[0], "smollm2")
    assert body["repeat_penalty"] == 1.3 and "repetition_penalty" not in body
    assert body["logprobs"] is True and body["top_logprobs"] == 3 and body["seed"] == 7
    assert body["max_tokens"] == 128 and body["stream"] is True


def test_compare_builds_one_variant_per_value_and_checks_each() -> None:
    p = plan_of(model_ref="smollm2", compare="temperature=0,0.7,1.2", repeat=3)
    assert [v.label for v in p.variants] == ["temperature=0", "temperature=0.7", "temperature=1.2"]
    assert [v.values["temperature"].value for v in p.variants] == [0.0, 0.7, 1.2]
    assert p.answers_per_variant == 3
    presets = plan_of(model_ref="smollm2", compare="preset=exact,creative")
    assert [v.values["temperature"].value for v in presets.variants] == [0.0, 1.1]
    for bad, message in [
        ("temperature=0,-1", "out of range"),
        ("warmth=1,2", "unknown parameter 'warmth'"),
        ("temperature", "is not PARAM=V1,V2"),
        ("preset=exact,nope", "unknown preset"),
    ]:
        with pytest.raises(UsageError, match=message):
            plan_of(model_ref="smollm2", compare=bad)


def test_target_without_a_profile_passes_every_parameter_through() -> None:
    p = plan_of(model_ref="chat", target="http://127.0.0.1:4000", sampling={"top_k": 5})
    assert p.dialect.name == "openai-compatible" and p.target == "http://127.0.0.1:4000/v1"
    assert p.variants[0].values["top_k"].value == 5 and p.model == "chat"
    with pytest.raises(UsageError, match="not an http"):
        plan_of(model_ref="chat", target="127.0.0.1:4000")
    with pytest.raises(UsageError, match="neither a model profile nor a provider's model"):
        plan_of(model_ref="no-such-model")


def test_workspace_try_section_is_validated_with_file_and_line(tmp_path: Path) -> None:
    ws = tmp_path / "llmops.yaml"
    ws.write_text("model: smollm2\ntry:\n  temperature: -1\n  top_pp: 0.9\n")
    with pytest.raises(ProfileProblems) as exc:
        load_workspace(ws)
    text = exc.value.render()
    assert "llmops.yaml:3: try.temperature" in text and "llmops.yaml:4: try.top_pp" in text
