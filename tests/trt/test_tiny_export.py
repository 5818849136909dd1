"""Real export, checker, onnxruntime parity and Triton chain on a tiny random Llama (seconds, not minutes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from llmops.hf import load_tokenizer
from llmops.trt.export import check_onnx, has_qdq, load_for_export
from llmops.trt.parity import check_parity
from llmops.trt.triton import check_repository, onnx_signature, write_repository


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_has_dynamic_axes_and_passes_checker(tiny_onnx: Path) -> None:
    check_onnx(tiny_onnx)
    sig = onnx_signature(tiny_onnx)
    assert [(t.name, t.data_type, t.dims) for t in sig.inputs] == [
        ("input_ids", "TYPE_INT64", (-1,)),
        ("attention_mask", "TYPE_INT64", (-1,)),
    ]
    (logits,) = sig.outputs
    assert logits.name == "logits" and logits.data_type == "TYPE_FP32" and logits.dims[0] == -1
    assert not has_qdq(tiny_onnx)


def test_parity_within_fp32_tolerance(tiny_checkpoint: Path, tiny_onnx: Path) -> None:
    report = check_parity(
        load_for_export(tiny_checkpoint), tiny_onnx, load_tokenizer(tiny_checkpoint, padding_side="right")
    )
    assert report.passed, report.verdict()
    assert report.max_abs < 1e-3
    assert report.torch_tokens == report.onnx_tokens and len(report.torch_tokens) == 4


def test_parity_fails_against_a_different_model(tiny_checkpoint: Path, tiny_onnx: Path) -> None:
    import torch

    model = load_for_export(tiny_checkpoint)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    report = check_parity(model, tiny_onnx, load_tokenizer(tiny_checkpoint, padding_side="right"))
    assert report.passed is False
    assert report.max_abs > 1e-3


def test_triton_repository_runs_the_chain_in_python(
    tiny_checkpoint: Path, tiny_onnx: Path, tmp_path: Path
) -> None:
    import onnxruntime as ort

    root = tmp_path / "triton"
    write_repository(
        root,
        engine_file=tiny_onnx,
        onnx_for_signature=tiny_onnx,
        tokenizer_dir=tiny_checkpoint,
        max_batch=4,
        max_seq=64,
        platform="onnxruntime_onnx",
    )
    assert check_repository(root) == []
    # The python-backend helpers, as Triton would load them, around the engine model's own file.
    tok_mod = _module(root / "tokenizer" / "1" / "model.py", "tok_model")
    post_mod = _module(root / "postprocessor" / "1" / "model.py", "post_model")
    tokenizer = tok_mod.load_tokenizer(root / "tokenizer" / "1" / "tokenizer")
    texts = tok_mod.texts_from(np.array([[b"The capital of France is"], [b"Water boils"]], dtype=object))
    ids, mask = tok_mod.encode(tokenizer, texts, 64)
    session = ort.InferenceSession(str(root / "llm" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    next_ids = post_mod.next_tokens(logits, mask)
    model = load_for_export(tiny_checkpoint)
    for row, text in enumerate(texts):
        import torch

        single = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected = int(model(**single, use_cache=False).logits[0, -1].argmax())
        assert next_ids[row] == expected
    decoded = post_mod.decode(tokenizer, next_ids)
    assert decoded.shape == (2, 1) and isinstance(decoded[0, 0], bytes)
