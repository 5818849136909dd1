"""The pure parts: parameter ranges, presets, dialects, logprob confidence and diversity figures."""

from __future__ import annotations

import math

import pytest

from llmops.errors import UsageError
from llmops.sampling import DIALECTS, band, check_value, confidence, diversity, parse_value
from llmops.sampling.dialects import dialect_for_engine, dialect_for_url, unsupported, wire_fields
from llmops.sampling.presets import PRESETS, get_preset


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", -0.1),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_k", 0),
        ("max_tokens", 0),
        ("frequency_penalty", 2.5),
        ("presence_penalty", -3.0),
        ("repetition_penalty", 0.0),
        ("temperature", float("nan")),
    ],
)
def test_out_of_range_values_are_usage_errors_naming_the_range(name: str, value: float) -> None:
    with pytest.raises(UsageError) as exc:
        check_value(name, value)
    assert exc.value.exit_code == 2
    assert name.replace("_", "-") in exc.value.render() and "must be" in exc.value.render()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 0.0),
        ("temperature", 1.7),
        ("top_p", 1.0),
        ("top_k", 1),
        ("seed", -5),
        ("stop", ["\n"]),
    ],
)
def test_values_in_range_pass(name: str, value: object) -> None:
    check_value(name, value)


def test_parse_value_types_and_checks() -> None:
    assert parse_value("temperature", " 0.7 ") == 0.7
    assert parse_value("top_k", "40") == 40
    with pytest.raises(UsageError, match="is not an integer"):
        parse_value("top_k", "4.5")
    with pytest.raises(UsageError, match="out of range"):
        parse_value("top_p", "2", source="--compare top_p")


def test_presets_are_the_guides_table() -> None:
    assert PRESETS["exact"].values == {"temperature": 0.0, "top_p": 1.0, "top_k": 1}
    assert PRESETS["assistant"].values == {"temperature": 0.7, "top_p": 0.9}
    creative = PRESETS["creative"].values
    assert 1.0 <= creative["temperature"] <= 1.2 and creative["top_p"] == 0.95 and creative["top_k"] == 100
    assert PRESETS["explore"].values == {"temperature": 1.0, "top_k": 50} and PRESETS["explore"].n == 5
    with pytest.raises(UsageError) as exc:
        get_preset("creativ")
    assert "did you mean 'creative'" in exc.value.render()


def test_dialects_know_what_each_api_takes() -> None:
    assert unsupported(DIALECTS["openai"], ["temperature", "top_k", "repetition_penalty"]) == [
        "top_k",
        "repetition_penalty",
    ]
    assert unsupported(DIALECTS["anthropic"], ["top_k", "seed", "frequency_penalty"]) == [
        "seed",
        "frequency_penalty",
    ]
    # llama-cpp-python's server reads repeat_penalty and silently ignores repetition_penalty
    assert wire_fields(dialect_for_engine("llamacpp"), {"repetition_penalty": 1.2}) == {"repeat_penalty": 1.2}
    assert wire_fields(dialect_for_engine("vllm"), {"repetition_penalty": 1.2}) == {"repetition_penalty": 1.2}
    assert dialect_for_url("https://api.openai.com/v1").name == "openai"
    assert dialect_for_url("https://key@api.anthropic.com").name == "anthropic"
    assert dialect_for_url("http://127.0.0.1:4000/v1").name == "openai-compatible"


def test_confidence_is_exp_of_the_mean_logprob() -> None:
    lps = [math.log(0.9), math.log(0.5), math.log(0.8)]
    assert confidence(lps) == pytest.approx((0.9 * 0.5 * 0.8) ** (1 / 3))
    assert confidence([]) is None
    assert band(0.81) == "automatic"
    assert band(0.8) == "check" and band(0.5) == "check"
    assert band(0.49) == "human review"


def test_diversity_counts_distinct_answers_and_words() -> None:
    same = diversity(["Red, green, blue.", "Red, green, blue. ", "Red, green, blue."])
    assert same.identical and same.distinct_answers == 1
    assert same.distinct_word_ratio == pytest.approx(5 / 18)  # 6 words (red , green , blue .), 5 distinct, x3
    varied = diversity(["a b c", "d e f"])
    assert not varied.identical and varied.distinct_answers == 2 and varied.distinct_word_ratio == 1.0
    assert diversity([]).distinct_word_ratio is None
