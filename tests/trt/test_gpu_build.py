"""A real TensorRT engine from the tiny model's ONNX, run on the GPU and compared with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmops.doctor import gpus
from llmops.trt.engine import build_engine, major_of, recipe, shape_profile, trt_version

pytestmark = pytest.mark.gpu


def _requirements() -> str | None:
    if trt_version() is None:
        return "TensorRT is not installed (pip install 'llmops[tensorrt]')"
    if not gpus():
        return "no NVIDIA GPU (nvidia-smi finds none)"
    return None


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_and_run_engine(tiny_checkpoint: Path, tiny_onnx: Path, tmp_path: Path, precision: str) -> None:
    missing = _requirements()
    if missing:
        pytest.skip(missing)
    import tensorrt as trt
    import torch

    from llmops.trt.export import export_onnx, load_for_export
    from llmops.trt.parity import onnx_session

    version = trt_version()
    rec = recipe(precision, major_of(version))
    onnx_path = tiny_onnx
    if rec.onnx_dtype != "float32":
        onnx_path = tmp_path / "typed" / "model.onnx"
        export_onnx(load_for_export(tiny_checkpoint, rec.onnx_dtype), onnx_path, dtype=rec.onnx_dtype)
    profile = shape_profile(256, max_batch=4, opt_batch=2, max_seq=64, opt_seq=16)
    report = build_engine(
        onnx_path,
        tmp_path / "engine" / "model.plan",
        rec,
        profile,
        workspace_gib=1,
        gpu=gpus()[0].name,
        version=version,
    )
    meta = json.loads((tmp_path / "engine" / "model.json").read_text())
    assert meta["tensorrt_version"] == version and meta["engine_bytes"] == report.engine_bytes > 0
    assert meta["shapes"] == {"min": [1, 1], "opt": [2, 16], "max": [4, 64]}

    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine((tmp_path / "engine" / "model.plan").read_bytes())
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert set(names) == {"input_ids", "attention_mask", "logits"}
    if not torch.cuda.is_available():
        pytest.skip("engine built; running it needs torch with CUDA to hold the buffers")
    ids = np.array([[5, 9, 17, 33, 2, 8], [7, 7, 1, 4, 0, 0]], dtype=np.int64)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=np.int64)
    context = engine.create_execution_context()
    buffers = {"input_ids": torch.from_numpy(ids).cuda(), "attention_mask": torch.from_numpy(mask).cuda()}
    for name, tensor in buffers.items():
        context.set_input_shape(name, tuple(tensor.shape))
    out_dtype = torch.float16 if engine.get_tensor_dtype("logits") == trt.DataType.HALF else torch.float32
    buffers["logits"] = torch.empty(tuple(context.get_tensor_shape("logits")), dtype=out_dtype, device="cuda")
    for name, tensor in buffers.items():
        context.set_tensor_address(name, tensor.data_ptr())
    assert context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    got = buffers["logits"].float().cpu().numpy()
    ref = onnx_session(tiny_onnx).run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    keep = mask.astype(bool)
    limit = 1e-2 if precision == "fp32" else 0.5
    assert float(np.max(np.abs(got[keep] - ref[keep]))) < limit
