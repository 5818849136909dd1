"""The config.pbtxt reader."""

from __future__ import annotations

import pytest

from llmops.trt.pbtxt import as_list, parse

TEXT = """
# a comment
name: "llm"
platform: "tensorrt_plan"
max_batch_size: 8
input [
  { name: "input_ids" data_type: TYPE_INT64 dims: [ -1 ] },
  { name: "attention_mask", data_type: TYPE_INT64, dims: [ -1 ] }
]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ -1, 49152 ] } ]
instance_group [ { kind: KIND_GPU count: 1 } ]
parameters { key: "max_seq" value: { string_value: "512" } }
ensemble_scheduling {
  step { model_name: "a" input_map { key: "x" value: "y" } input_map { key: "z" value: "w" } }
  step { model_name: "b" }
}
"""


def test_parses_scalars_lists_enums_and_nesting() -> None:
    cfg = parse(TEXT)
    assert cfg["name"] == "llm" and cfg["max_batch_size"] == 8
    assert [t["name"] for t in cfg["input"]] == ["input_ids", "attention_mask"]
    assert cfg["input"][1]["data_type"] == "TYPE_INT64"
    assert cfg["output"][0]["dims"] == [-1, 49152]
    assert cfg["instance_group"][0]["kind"] == "KIND_GPU"
    assert cfg["parameters"]["value"]["string_value"] == "512"


def test_repeated_fields_become_lists() -> None:
    steps = as_list(parse(TEXT)["ensemble_scheduling"]["step"])
    assert [s["model_name"] for s in steps] == ["a", "b"]
    assert [m["key"] for m in as_list(steps[0]["input_map"])] == ["x", "z"]
    assert as_list(steps[1].get("input_map")) == []


@pytest.mark.parametrize("bad", ['name: "x" input [ { name: "a" ', "step { a: 1 } }", "name:"])
def test_malformed_text_is_an_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)
