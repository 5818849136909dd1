"""`llmops trt build` through the CLI on a tiny real checkpoint: exit codes, files, --json, --dry-run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.trt.engine import trt_version

runner = CliRunner()
NO_TRT = trt_version() is None


def invoke(*args: str):
    return runner.invoke(app, ["trt", "build", *args])


@pytest.mark.skipif(not NO_TRT, reason="this machine has TensorRT: the exit-3 path does not apply")
def test_without_tensorrt_export_and_parity_run_then_exit_3(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = invoke(str(tiny_checkpoint), "-o", str(out))  # default precision fp16
    assert res.exit_code == 3, res.output
    assert "pip install 'llmops[tensorrt]'" in res.stderr
    assert (out / "onnx" / "model.onnx").is_file()
    assert (out / "onnx-fp16" / "model.onnx").is_file()  # what a strongly typed (TensorRT 11) build reads
    summary = json.loads((out / "build.json").read_text())
    assert summary["ok"] is False and "tensorrt" in summary["stopped"]
    assert [p["dtype"] for p in summary["parity"]] == ["float32", "float16"]
    assert all(p["passed"] for p in summary["parity"])
    assert "parity (float32) ok" in res.stdout


def test_onnx_only_with_triton_json(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = invoke(
        str(tiny_checkpoint),
        "--onnx-only",
        "--triton",
        "--precision",
        "fp32",
        "-o",
        str(out),
        "--max-batch",
        "4",
        "--max-seq",
        "128",
        "--json",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["triton_problems"] == []
    assert doc["parity"][0]["max_abs"] < 1e-3
    assert sorted(p.name for p in (out / "triton").iterdir()) == [
        "ensemble",
        "llm",
        "postprocessor",
        "tokenizer",
    ]
    assert "max_batch_size: 4" in (out / "triton" / "llm" / "config.pbtxt").read_text()

    again = invoke(str(tiny_checkpoint), "--onnx-only", "--precision", "fp32", "-o", str(out))
    assert again.exit_code == 2
    assert "is not empty" in again.stderr and "--force" in again.stderr
    assert (out / "triton").is_dir()  # untouched
    forced = invoke(str(tiny_checkpoint), "--onnx-only", "--precision", "fp32", "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert not (out / "triton").exists()


def test_dry_run_shows_plan_and_writes_nothing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = invoke(
        str(tiny_checkpoint), "--dry-run", "--json", "--precision", "fp16", "--max-batch", "2", "-o", str(out)
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    settings = plan["settings"]  # the one dry-run shape: {name: {value, origin}}
    assert plan["command"] == "trt build"
    assert settings["precision"]["origin"] == "flag" and settings["workspace_gib"]["origin"] == "default"
    assert settings["max_batch"] == {"value": 2, "origin": "flag"}
    assert settings["max_seq"] == {"value": 256, "origin": "default"}  # shrunk to the model's positions
    assert all(set(v) == {"value", "origin"} for v in settings.values())
    assert plan["steps"][0] == "export ONNX (float32)"
    if NO_TRT:
        assert set(plan["recipes"]) == {"tensorrt10", "tensorrt11"}
        assert "BuilderFlag.FP16" in plan["recipes"]["tensorrt10"]
        assert "from the float16 ONNX" in plan["recipes"]["tensorrt11"]
    assert not out.exists()


def test_workspace_section_sets_defaults(tiny_checkpoint: Path, tmp_path: Path) -> None:
    Path("llmops.yaml").write_text("trt:\n  precision: bf16\n  workspace_gib: 2\n  max_batch: 3\n")
    res = invoke(str(tiny_checkpoint), "--dry-run", "--json")
    settings = json.loads(res.stdout)["settings"]
    assert settings["precision"] == {"value": "bf16", "origin": "workspace"}
    assert settings["workspace_gib"]["value"] == 2 and settings["max_batch"]["value"] == 3


def test_environment_sits_between_flags_and_workspace(tiny_checkpoint: Path, monkeypatch) -> None:
    Path("llmops.yaml").write_text("trt:\n  precision: bf16\n  max_batch: 3\n")
    monkeypatch.setenv("LLMOPS_TRT_PRECISION", "fp32")
    monkeypatch.setenv("LLMOPS_TRT_MAX_BATCH", "5")
    settings = json.loads(invoke(str(tiny_checkpoint), "--dry-run", "--json", "--max-batch", "6").stdout)[
        "settings"
    ]
    assert settings["precision"] == {"value": "fp32", "origin": "env"}
    assert settings["max_batch"] == {"value": 6, "origin": "flag"}
    monkeypatch.setenv("LLMOPS_TRT_WORKSPACE_GIB", "lots")
    res = invoke(str(tiny_checkpoint), "--dry-run", "--json")
    assert res.exit_code == 2 and "LLMOPS_TRT_WORKSPACE_GIB" in res.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--min-batch", "4", "--opt-batch", "2"], "--min-batch <= --opt-batch <= --max-batch"),
        (["--max-seq", "100000"], "exceeds the model's 256 positions"),
        (["--precision", "fp4"], "unknown precision 'fp4'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_checkpoint: Path, args: list[str], fragment: str) -> None:
    res = invoke(str(tiny_checkpoint), *args)
    assert res.exit_code == 2
    assert fragment in res.stderr
    assert "Traceback" not in res.output


def test_help_imports_no_heavy_library() -> None:
    import subprocess

    code = (
        "import sys; from llmops.cli import app; import llmops.commands.trt; "
        "heavy = ('torch', 'onnx', 'onnxruntime', 'tensorrt', 'transformers'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
