"""`trt build -o` never loses a user's files: refused before any work, staged, swapped only when done.

Issue 11 reproduced `trt build --force` emptying the output folder before the export started (`-o .`
emptied the current folder), and a failed or interrupted build leaving nothing of an earlier output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.output import MARKER, staged_dir
from llmops.trt.engine import trt_version

runner = CliRunner()
NO_TRT = trt_version() is None


def invoke(*args: str):
    return runner.invoke(app, ["trt", "build", *args])


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under a folder with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def earlier_output(out: Path) -> dict[str, str]:
    """An output llmops wrote before (it carries the marker), so --force may replace it."""
    with staged_dir(out, force=False, command="trt build") as tmp:
        (tmp / "onnx").mkdir()
        (tmp / "onnx" / "model.onnx").write_bytes(b"an engine build from yesterday")
        (tmp / "build.json").write_text('{"ok": true}\n')
    return snapshot(out)


def no_leftovers(parent: Path, name: str) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_force_never_replaces_a_folder_llmops_did_not_write(tiny_checkpoint: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work")
    res = invoke(str(tiny_checkpoint), "--onnx-only", "--force", "-o", str(mine))
    assert res.exit_code == 2, res.output
    assert "did not write" in res.stderr and "thesis.tex" in res.stderr
    assert (mine / "thesis.tex").read_text() == "three years of work"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("where", [".", "..", "~"])
def test_current_home_and_parent_folders_are_refused(tiny_checkpoint: Path, where: str) -> None:
    Path("notes.txt").write_text("keep me")
    res = invoke(str(tiny_checkpoint), "--onnx-only", "--force", "-o", where)
    assert res.exit_code == 2, res.output
    assert "refusing to write output into" in res.stderr
    assert Path("notes.txt").read_text() == "keep me"


@pytest.mark.skipif(not NO_TRT, reason="this machine has TensorRT: the build would not stop with exit 3")
def test_a_build_that_stops_leaves_the_earlier_output_untouched(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    before = earlier_output(out)
    res = invoke(str(tiny_checkpoint), "--precision", "fp32", "--force", "-o", str(out), "--json")
    assert res.exit_code == 3, res.output  # export and parity ran, then no TensorRT
    assert snapshot(out) == before
    assert no_leftovers(tmp_path, "out")
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["kept"] is False
    assert any("kept unchanged" in note for note in doc["notes"])


def test_an_interrupted_build_leaves_the_earlier_output_untouched(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    before = earlier_output(out)
    reached: list[Path] = []

    def ctrl_c_after_the_export(model, onnx_path: Path, *args, **kwargs):
        reached.append(onnx_path)  # the export already wrote this file, into the staged folder
        raise KeyboardInterrupt

    monkeypatch.setattr("llmops.trt.parity.check_parity", ctrl_c_after_the_export)
    res = invoke(str(tiny_checkpoint), "--onnx-only", "--precision", "fp32", "--force", "-o", str(out))
    assert res.exit_code == 130, res.output
    assert reached and reached[0].name == "model.onnx" and not reached[0].is_relative_to(out)
    assert snapshot(out) == before
    assert no_leftovers(tmp_path, "out")


def test_a_fresh_build_carries_the_marker_so_force_can_replace_it(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = invoke(str(tiny_checkpoint), "--onnx-only", "--precision", "fp32", "-o", str(out))
    assert first.exit_code == 0, first.output
    assert (out / MARKER).is_file() and (out / "onnx" / "model.onnx").is_file()
    (out / "my-notes.txt").write_text("added by hand")
    again = invoke(str(tiny_checkpoint), "--onnx-only", "--precision", "fp32", "--force", "-o", str(out))
    assert again.exit_code == 2 and "my-notes.txt" in again.stderr
    assert (out / "my-notes.txt").exists()
