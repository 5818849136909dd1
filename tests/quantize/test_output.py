from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmops.errors import UsageError
from llmops.profiles.loader import Catalog
from llmops.quantize.output import check_output, output_profile, profile_name, staged_output, write_profile


def test_existing_non_empty_output_is_refused_unless_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    check_output(out, force=False)  # empty: fine
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists and is not empty") as exc:
        check_output(out, force=False)
    assert "--force" in exc.value.hint
    check_output(out, force=True)


def test_staged_output_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_output(out, force=False) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed half way")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with staged_output(out, force=False) as tmp:
        (tmp / "model.safetensors").write_bytes(b"whole")
    assert (out / "model.safetensors").read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_force_replaces_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_output(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]


def test_written_profile_loads_through_the_catalog(tmp_path: Path) -> None:
    source = Catalog.discover(None).model("smollm2").profile
    out = tmp_path / "smollm2-w4a16-g64"
    profile = output_profile(source, out, profile_name(out), "compressed-tensors", "test")
    path = write_profile(profile, force=False)
    assert path is not None and path.is_file()
    assert write_profile(profile, force=False) is None  # never overwrites
    loaded = Catalog.discover(None).model("smollm2-w4a16-g64")
    assert loaded.source == path
    assert loaded.profile.source.path == str(out)
    assert loaded.profile.engine == "vllm"
    assert loaded.profile.serving.quantization == "compressed-tensors"
    assert loaded.profile.architecture == source.architecture
    assert yaml.safe_load(path.read_text())["kind"] == "model"
