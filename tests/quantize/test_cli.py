"""`llmops quantize` refusals: each one line, the right exit code, before any model is loaded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["quantize", *args])


def test_dry_run_json_says_where_each_value_came_from(tmp_path: Path) -> None:
    (tmp_path / "llmops.yaml").write_text("quantize:\n  samples: 8\n  method: gptq\n")
    result = CliRunner().invoke(
        app, ["--config", str(tmp_path / "llmops.yaml"), "quantize", "--bits", "8", "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "quantize"
    settings = doc["settings"]  # the one dry-run shape: {name: {value, origin}}
    assert settings["model"] == {"value": "smollm2", "origin": "default"}
    assert settings["bits"] == {"value": 8, "origin": "flag"}
    assert settings["samples"] == {"value": 8, "origin": "workspace"}
    assert settings["group_size"] == {"value": 64, "origin": "default"}
    assert settings["output"]["value"].endswith("smollm2-w8a16-g64")
    assert settings["profile"] == {"value": True, "origin": "default"}
    assert doc["profile_name"] == "smollm2-w8a16-g64"
    assert all(set(v) == {"value", "origin"} for v in settings.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["llama-7b-nope"], "not found"),
        (["--bits", "3"], "unsupported --bits 3"),
        (["--group-size", "128"], "--group-size 128 does not divide"),
        (["--method", "bnb", "--calib", "x.txt"], "needs no calibration"),
        (["--method", "awq"], "unknown --method 'awq'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("model.bin", b"\x00\x00\x01binary", "is not text"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "is not UTF-8 text"),
    ],
)
def test_bad_calibration_file_exits_2(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    calib = tmp_path / name
    calib.write_bytes(data)
    result = invoke("--calib", str(calib), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert message in result.output and name in result.output
    assert not (tmp_path / "out").exists()


def test_missing_calibration_file_exits_2(tmp_path: Path) -> None:
    result = invoke("--calib", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    result = invoke("-o", str(out))
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.output and "--force" in result.output
    assert (out / "precious.txt").read_text() == "mine"
    forced = invoke("-o", str(out), "--force")  # --force replaces only a folder llmops wrote
    assert forced.exit_code == 2 and "did not write" in forced.output and "precious.txt" in forced.output
    assert (out / "precious.txt").read_text() == "mine"


def test_current_folder_is_never_an_output(tmp_path: Path) -> None:
    Path("notes.txt").write_text("keep me")
    result = invoke("-o", ".", "--force")
    assert result.exit_code == 2 and "refusing to write output into" in result.output
    assert Path("notes.txt").read_text() == "keep me"


@pytest.mark.skipif(importlib.util.find_spec("gptqmodel") is not None, reason="GPTQModel is installed here")
def test_gptqmodel_format_without_the_extra_exits_3(tmp_path: Path) -> None:
    result = invoke("--format", "gptq", "-o", str(tmp_path / "out"))
    assert result.exit_code == 3, result.output
    assert "pip install 'llmops[gptqmodel]'" in result.output


def test_quantize_is_listed_and_help_is_fast(cli) -> None:
    proc = cli("quantize", "--help")
    assert proc.returncode == 0
    assert "--group-size" in proc.stdout and "--no-eval" in proc.stdout
    check = cli("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    heavy = {"torch", "transformers", "llmcompressor", "bitsandbytes", "datasets"}
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in check.stderr.splitlines() if "|" in line
    }
    assert not heavy & imported
