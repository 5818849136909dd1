"""The model profile quantize writes: never shadows a name that resolves, never overwrites a user's file.

Issue 11 reproduced `quantize -o ./llama-3.1-8b` silently shadowing the shipped profile (its aliases
stopped resolving) and `-o /tmp/x/gptq` leaving a permanent profile `gptq` for a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from llmops.cli import app
from llmops.profiles.loader import Catalog
from llmops.profiles.ownership import WRITTEN_BY, written_by_llmops
from llmops.quantize.profile import choose_profile, output_profile, profiles_dir, write_profile


def smollm2():
    return Catalog.discover(None).model("smollm2").profile


def write_for(output: Path, slug: str = "w4a16-g64") -> Path:
    """What quantize does at the end: choose the name, write the profile."""
    target = choose_profile(Catalog.discover(None), output, slug)
    profile = output_profile(smollm2(), output, target.name, "compressed-tensors", "test")
    path = write_profile(target, profile, output)
    assert path is not None
    return path


def test_a_shipped_name_or_alias_is_never_shadowed(tmp_path: Path) -> None:
    for taken in ("llama-3.1-8b", "llama-8b"):  # a shipped profile's name, and one of its aliases
        out = tmp_path / taken
        out.mkdir()
        target = choose_profile(Catalog.discover(None), out, "w4a16-g128")
        assert target.name == f"{taken}-w4a16-g128"
        assert target.note and f"'{taken}' already names a model profile" in target.note
        write_for(out, "w4a16-g128")
    catalog = Catalog.discover(None)
    shipped = catalog.model("llama-3.1-8b")
    assert catalog.model("llama3-8b").source == shipped.source  # the aliases still resolve
    assert catalog.model("llama-8b").source == shipped.source
    assert catalog.model("llama-3.1-8b-w4a16-g128").profile.source.path == str(tmp_path / "llama-3.1-8b")


def test_a_profile_llmops_did_not_write_is_never_overwritten(tmp_path: Path) -> None:
    mine = profiles_dir() / "tuned.yaml"
    mine.parent.mkdir(parents=True)
    text = "kind: model\nname: tuned\nsource:\n  path: /data/tuned\n"
    mine.write_text(text)
    out = tmp_path / "tuned"
    out.mkdir()
    path = write_for(out)
    assert path.name == "tuned-w4a16-g64.yaml"
    assert mine.read_text() == text and not written_by_llmops(mine)


def test_its_own_profile_is_replaced_for_the_same_or_a_vanished_folder(tmp_path: Path) -> None:
    out = tmp_path / "run" / "gptq"
    out.mkdir(parents=True)
    first = write_for(out)
    assert first.name == "gptq.yaml" and first.read_text().startswith(WRITTEN_BY)
    assert write_for(out) == first  # a re-run (--force) replaces its own profile
    other = tmp_path / "other" / "gptq"
    other.mkdir(parents=True)
    second = write_for(other)  # the first folder still exists: its profile is kept
    assert second.name == "gptq-w4a16-g64.yaml"
    assert yaml.safe_load(first.read_text())["source"]["path"] == str(out)
    out.rmdir()
    again = tmp_path / "third" / "gptq"
    again.mkdir(parents=True)
    assert write_for(again) == first  # the folder it named is gone: a stale profile of ours is replaced
    assert yaml.safe_load(first.read_text())["source"]["path"] == str(again)


def test_dry_run_says_where_the_profile_goes_and_no_profile_skips_it(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "llama-3.1-8b"
    res = runner.invoke(app, ["quantize", "-o", str(out), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["profile_name"] == "llama-3.1-8b-w4a16-g64"
    assert doc["profile_path"] == str(profiles_dir() / "llama-3.1-8b-w4a16-g64.yaml")
    assert any("temporary folder" in n for n in doc["notes"])  # pytest's tmp_path is under the temp dir
    res = runner.invoke(app, ["quantize", "-o", str(out), "--no-profile", "--dry-run", "--json"])
    doc = json.loads(res.stdout)
    assert doc["settings"]["profile"] == {"value": False, "origin": "flag"}
    assert doc["profile_name"] is None and doc["profile_path"] is None
    human = runner.invoke(app, ["quantize", "-o", str(out), "--dry-run"])
    assert "would be written to" in human.stderr and "llama-3.1-8b-w4a16-g64" in human.stderr
