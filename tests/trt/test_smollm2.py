"""Done-when: the real SmolLM2-135M exports on CPU, passes onnx.checker, matches PyTorch within the fp32
tolerance with identical greedy tokens, and its Triton repository is consistent (parsed from config.pbtxt)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmops.trt.pbtxt import as_list
from llmops.trt.triton import check_repository, read_repository

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("smollm2-trt") / "build"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmops",
            "trt",
            "build",
            "smollm2",
            "--precision",
            "fp32",
            "--onnx-only",
            "--triton",
            "--max-batch",
            "4",
            "--max-seq",
            "256",
            "-o",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout), out, res


def test_export_checker_and_parity(smollm2_build: tuple[dict, Path, subprocess.CompletedProcess]) -> None:
    doc, out, _ = smollm2_build
    (onnx,) = doc["onnx"]
    assert Path(onnx["path"]) == out / "onnx" / "model.onnx" and onnx["logits_elem_type"] == "FLOAT"
    assert onnx["external_data"] is False  # 135M parameters in fp32 stay under 2 GB
    (parity,) = doc["parity"]
    assert parity["passed"] is True
    assert parity["max_abs"] <= 1e-3
    assert parity["prompts"] == 4
    assert parity["torch_tokens"] == parity["onnx_tokens"]
    print(
        f"\nSmolLM2 export {onnx['seconds']:.1f} s, {onnx['size_bytes'] / 1e6:.0f} MB; parity max abs "
        f"{parity['max_abs']:.2e}, rel {parity['max_rel']:.2e}, greedy {parity['greedy_agreement']:.0%}"
    )


def test_triton_repository_is_consistent(
    smollm2_build: tuple[dict, Path, subprocess.CompletedProcess],
) -> None:
    doc, out, _ = smollm2_build
    root = out / "triton"
    assert doc["triton_problems"] == [] and check_repository(root) == []
    configs = read_repository(root)
    assert sorted(configs) == ["ensemble", "llm", "postprocessor", "tokenizer"]
    assert {c["max_batch_size"] for c in configs.values()} == {4}
    llm = configs["llm"]
    assert [(t["name"], t["data_type"], t["dims"]) for t in llm["input"]] == [
        ("input_ids", "TYPE_INT64", [-1]),
        ("attention_mask", "TYPE_INT64", [-1]),
    ]
    assert llm["output"][0] == {"name": "logits", "data_type": "TYPE_FP32", "dims": [-1, 49152]}
    assert configs["tokenizer"]["output"] == llm["input"]
    assert configs["postprocessor"]["input"][0] == llm["output"][0]
    steps = as_list(configs["ensemble"]["ensemble_scheduling"]["step"])
    assert [s["model_name"] for s in steps] == ["tokenizer", "llm", "postprocessor"]


def test_triton_chain_predicts_the_greedy_token(
    smollm2_build: tuple[dict, Path, subprocess.CompletedProcess],
) -> None:
    import onnxruntime as ort

    doc, out, _ = smollm2_build
    root = out / "triton"

    def module(path: Path, name: str):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    tok_mod = module(root / "tokenizer" / "1" / "model.py", "smol_tok")
    post_mod = module(root / "postprocessor" / "1" / "model.py", "smol_post")
    tokenizer = tok_mod.load_tokenizer(root / "tokenizer" / "1" / "tokenizer")
    ids, mask = tok_mod.encode(tokenizer, ["The capital of France is", "def fibonacci(n):"], 256)
    session = ort.InferenceSession(str(root / "llm" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    next_ids = post_mod.next_tokens(logits, mask)
    expected = [doc["parity"][0]["torch_tokens"][0][0], doc["parity"][0]["torch_tokens"][1][0]]
    assert next_ids.tolist() == expected
    text = post_mod.decode(tokenizer, next_ids)
    assert text.dtype == np.object_ and text.shape == (2, 1)
    print(f"\nnext tokens: {[t[0].decode() for t in text]}")
