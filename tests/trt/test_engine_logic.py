"""Pure decisions of the engine builder: shape profiles, TensorRT 10 vs 11 recipes, version parsing."""

from __future__ import annotations

import pytest

from llmops.errors import EnvironmentMissing, MissingExtra, UsageError
from llmops.trt import engine
from llmops.trt.engine import recipe, shape_profile


def test_shape_profile_defaults_and_shapes() -> None:
    prof = shape_profile(None, max_batch=4, opt_seq=64)
    assert prof.shapes() == ((1, 1), (1, 64), (4, 512))


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"min_batch": 4, "opt_batch": 2}, "--min-batch <= --opt-batch <= --max-batch, got 4, 2, 8"),
        ({"opt_seq": 1024, "max_seq": 512}, "--min-seq <= --opt-seq <= --max-seq, got 1, 1024, 512"),
        ({"max_batch": 0}, "max_batch"),
    ],
)
def test_shape_profile_rejects_bad_orders(values: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        shape_profile(None, **values)
    assert fragment in info.value.render()
    assert info.value.exit_code == 2


def test_max_seq_is_capped_by_the_model_positions() -> None:
    with pytest.raises(UsageError, match="exceeds the model's 256 positions"):
        shape_profile(256, max_seq=512)
    assert shape_profile(256, max_seq=256, opt_seq=100).max_seq == 256


def test_trt10_uses_builder_flags_on_the_fp32_onnx() -> None:
    assert recipe("fp32", 10).flags == ()
    fp16 = recipe("fp16", 10)
    assert (fp16.flags, fp16.onnx_dtype, fp16.strongly_typed) == (("FP16",), "float32", False)
    assert recipe("bf16", 10).flags == ("BF16",)
    int8 = recipe("int8", 10)
    assert int8.flags == ("INT8", "FP16") and int8.needs_qdq
    assert recipe("fp8", 10).flags == ("FP8", "FP16")


def test_trt11_is_strongly_typed_and_takes_precision_from_the_onnx() -> None:
    for prec, dtype in [("fp32", "float32"), ("fp16", "float16"), ("bf16", "bfloat16"), ("int8", "float32")]:
        rec = recipe(prec, 11)
        assert rec.flags == () and rec.strongly_typed and rec.onnx_dtype == dtype
    assert recipe("fp8", 11).needs_qdq
    assert "strongly typed, no precision flags, from the float16 ONNX" in recipe("fp16", 11).describe()
    assert "BuilderFlag.FP16" in recipe("fp16", 10).describe()


def test_old_tensorrt_and_unknown_precision_are_refused() -> None:
    with pytest.raises(EnvironmentMissing, match="TensorRT 8 is too old"):
        recipe("fp16", 8)
    with pytest.raises(UsageError, match="unknown precision 'fp4'"):
        recipe("fp4", 10)


def test_version_parsing() -> None:
    assert engine.major_of("10.13.3.9") == 10
    assert engine.major_of("11.4.1") == 11
    with pytest.raises(EnvironmentMissing):
        engine.major_of("dev")


@pytest.mark.skipif(engine.trt_version() is not None, reason="TensorRT is installed on this machine")
def test_missing_tensorrt_names_the_extra() -> None:
    with pytest.raises(MissingExtra) as info:
        engine.require_tensorrt()
    assert info.value.exit_code == 3
    assert "pip install 'llmops[tensorrt]'" in info.value.render()


def test_default_sequence_lengths_shrink_to_the_model() -> None:
    prof = shape_profile(100)
    assert (prof.opt_seq, prof.max_seq) == (100, 100)
