"""The staged output writer: refuses what it must, swaps only complete results, never loses a user's file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmops.errors import UsageError
from llmops.output import (
    MARKER,
    check_output_dir,
    check_output_file,
    staged_dir,
    staged_file,
    write_output_file,
)


def test_dir_written_with_marker_and_ordinary_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_dir(out, force=False, command="test") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a"
    assert (out / MARKER).is_file()
    mode = stat.S_IMODE(out.stat().st_mode)
    assert mode != 0o700 and mode & 0o755 == 0o755 & ~_umask()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_existing_output_needs_force_and_is_replaced_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_dir(out, force=False, command="test") as tmp:
        (tmp / "v1.txt").write_text("1")
    with pytest.raises(UsageError, match="already exists"):
        check_output_dir(out, force=False)
    with pytest.raises(RuntimeError), staged_dir(out, force=True, command="test") as tmp:
        (tmp / "v2.txt").write_text("2")
        raise RuntimeError("the build failed")
    assert (out / "v1.txt").read_text() == "1" and not (out / "v2.txt").exists()
    with pytest.raises(KeyboardInterrupt), staged_dir(out, force=True, command="test") as tmp:
        raise KeyboardInterrupt
    assert (out / "v1.txt").exists()
    with staged_dir(out, force=True, command="test") as tmp:
        (tmp / "v2.txt").write_text("2")
    assert (out / "v2.txt").exists() and not (out / "v1.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_refuses_a_folder_llmops_did_not_write(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="did not write"), staged_dir(user, force=True, command="test"):
        pass
    assert (user / "thesis.tex").read_text() == "years of work"


def test_force_refuses_an_llmops_folder_a_user_added_to(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_dir(out, force=False, command="test") as tmp:
        (tmp / "model.onnx").write_text("x")
    (out / "notes.md").write_text("mine")
    with pytest.raises(UsageError, match=r"notes\.md"):
        check_output_dir(out, force=True)


def test_force_accepts_an_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    out.chmod(0o750)
    with staged_dir(out, force=True, command="test") as tmp:
        (tmp / "x").write_text("x")
    assert (out / "x").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


@pytest.mark.parametrize("where", [".", "..", "~", "/"])
def test_special_folders_are_refused(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "a"))
    with pytest.raises(UsageError, match="refusing"):
        check_output_dir(Path(where), force=True)


def test_file_checks(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "x.json", force=False)
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path, force=True)
    f = tmp_path / "r.json"
    f.write_text("old")
    with pytest.raises(UsageError, match="already exists"):
        write_output_file(f, "new", force=False)
    assert f.read_text() == "old"
    with pytest.raises(ValueError), staged_file(f, force=True) as tmp:
        tmp.write_text("half")
        raise ValueError
    assert f.read_text() == "old"
    write_output_file(f, "new", force=True)
    assert f.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
