"""Triton repository: configs from an engine signature, and the consistency check catching broken chains."""

from __future__ import annotations

from pathlib import Path

from llmops.trt.pbtxt import parse
from llmops.trt.triton import MODELS, Signature, Tensor, check_repository, repository_configs

SIG = Signature(
    inputs=(Tensor("input_ids", "TYPE_INT64", (-1,)), Tensor("attention_mask", "TYPE_INT64", (-1,))),
    outputs=(Tensor("logits", "TYPE_FP16", (-1, 49152)),),
)


def _write(root: Path, configs: dict[str, str]) -> None:
    for model, text in configs.items():
        (root / model / "1").mkdir(parents=True)
        (root / model / "config.pbtxt").write_text(text)
        if model in ("tokenizer", "postprocessor"):
            (root / model / "1" / "model.py").write_text("class TritonPythonModel:\n    pass\n")


def test_tensorrt_plan_configs_follow_the_engine_signature() -> None:
    configs = {m: parse(t) for m, t in repository_configs(SIG, max_batch=8, max_seq=512).items()}
    assert set(configs) == set(MODELS)
    llm = configs["llm"]
    assert llm["platform"] == "tensorrt_plan" and llm["default_model_filename"] == "model.plan"
    assert llm["output"][0] == {"name": "logits", "data_type": "TYPE_FP16", "dims": [-1, 49152]}
    assert configs["postprocessor"]["input"][0]["data_type"] == "TYPE_FP16"  # follows the engine's logits
    assert {c["max_batch_size"] for c in configs.values()} == {8}
    assert configs["tokenizer"]["parameters"]["value"]["string_value"] == "512"


def test_check_repository_finds_missing_plan_and_type_mismatch(tmp_path: Path) -> None:
    configs = repository_configs(SIG, max_batch=8, max_seq=512)
    configs["postprocessor"] = configs["postprocessor"].replace("TYPE_FP16", "TYPE_FP32")
    configs["llm"] = configs["llm"].replace("max_batch_size: 8", "max_batch_size: 4")
    _write(tmp_path, configs)
    problems = check_repository(tmp_path)
    assert "llm: 1/model.plan is missing" in problems
    assert "llm: max_batch_size 4 < the ensemble's 8" in problems
    assert any(
        "postprocessor.logits: ('TYPE_FP16', (-1, 49152)) does not match ('TYPE_FP32'" in p for p in problems
    )


def test_check_repository_finds_unknown_tensor_names(tmp_path: Path) -> None:
    configs = repository_configs(SIG, max_batch=2, max_seq=64)
    configs["ensemble"] = configs["ensemble"].replace('key: "logits" value: "_logits" } \n', "")
    configs["ensemble"] = configs["ensemble"].replace(
        'output_map { key: "logits"', 'output_map { key: "scores"'
    )
    (tmp_path / "x").mkdir()
    _write(tmp_path, {k: v for k, v in configs.items() if k != "tokenizer"})
    problems = check_repository(tmp_path)
    assert f"model 'tokenizer' is missing ({tmp_path / 'tokenizer' / 'config.pbtxt'})" in problems
    assert "llm -> ensemble: 'scores' is not an output of llm" in problems
    assert "ensemble -> postprocessor: '_logits' is produced by no earlier step" in problems
