from __future__ import annotations

import pytest

from llmops.errors import UsageError
from llmops.profiles.schema import Architecture
from llmops.quantize.groups import choose_group_size, largest_dividing, quantized_in_features

SMOLLM2 = Architecture(
    num_layers=30,
    hidden_size=576,
    num_attention_heads=9,
    num_kv_heads=3,
    head_dim=64,
    vocab_size=49152,
    intermediate_size=1536,
)
LLAMA_8B = Architecture(
    num_layers=32,
    hidden_size=4096,
    num_attention_heads=32,
    num_kv_heads=8,
    head_dim=128,
    vocab_size=128256,
    intermediate_size=14336,
)


def test_smollm2_in_features_are_hidden_attention_and_mlp() -> None:
    assert quantized_in_features(SMOLLM2) == {576, 1536}


def test_smollm2_gets_64_because_128_does_not_divide_576() -> None:
    assert choose_group_size(quantized_in_features(SMOLLM2), None) == 64


def test_llama_gets_128() -> None:
    assert choose_group_size(quantized_in_features(LLAMA_8B), None) == 128


def test_user_group_size_that_divides_is_kept() -> None:
    assert choose_group_size({576, 1536}, 32) == 32


def test_user_group_size_that_does_not_divide_is_refused_with_the_fix() -> None:
    with pytest.raises(UsageError) as exc:
        choose_group_size({576, 1536}, 128)
    assert exc.value.exit_code == 2
    assert "576 is not a multiple of 128" in exc.value.message
    assert "--group-size 64" in exc.value.hint


def test_no_common_group_size_means_per_channel() -> None:
    assert largest_dividing({100, 300}) is None
    with pytest.raises(UsageError, match="100, 300 are not multiples of 64") as exc:
        choose_group_size({100, 300}, 64)
    assert "per-channel" in exc.value.hint
