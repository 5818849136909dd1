"""Stale and shadowing user profiles are flagged; writers ask `check_profile_target` first (issue 11)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.errors import UsageError
from llmops.profiles import check_profile_target, name_resolves, written_by_llmops
from llmops.profiles.loader import Catalog

runner = CliRunner()


def user_models() -> Path:
    folder = Path(os.environ["LLMOPS_CONFIG_DIR"]) / "profiles" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_quantized(name: str, source: Path, *, header: str = "# written by llmops quantize\n") -> Path:
    path = user_models() / f"{name}.yaml"
    path.write_text(
        header + f"kind: model\nname: {name}\nsource: {{path: {source}}}\n"
        "architecture: {num_layers: 2, hidden_size: 64, num_attention_heads: 4, num_kv_heads: 4, vocab_size: 100}\n"
    )
    return path


def test_list_marks_a_profile_whose_source_is_gone_as_stale(tmp_path: Path) -> None:
    present, gone = tmp_path / "present", tmp_path / "gptq"
    present.mkdir()
    write_quantized("kept", present)
    write_quantized("gptq", gone)
    doc = json.loads(runner.invoke(app, ["profiles", "list", "--kind", "model", "--json"]).stdout)
    rows = {r["name"]: r for r in doc["model"]}
    assert rows["kept"]["stale"] is None
    assert rows["gptq"]["stale"] == f"source.path {gone} is gone"
    assert rows["llama-3.1-8b"]["stale"] is None  # Hugging Face ids are never stale
    table = runner.invoke(app, ["profiles", "list", "--kind", "model"]).stdout
    assert "gptq (stale)" in table


def test_a_user_profile_shadowing_a_shipped_one_is_warned_by_list_and_validate(tmp_path: Path) -> None:
    # what `quantize -o ./llama-3.1-8b` used to write: the shipped name, and its aliases stop resolving
    shadow = write_quantized("llama-3.1-8b", tmp_path)
    listed = runner.invoke(app, ["profiles", "list", "--kind", "model", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)  # stdout stays one JSON document
    assert "warning:" in listed.stderr and "shadows the shipped model 'llama-3.1-8b'" in listed.stderr
    assert "builtin:models/llama-3.1-8b.yaml" in listed.stderr
    checked = runner.invoke(app, ["profiles", "validate", str(shadow.parent.parent)])
    assert checked.exit_code == 0
    assert "shadows the shipped model 'llama-3.1-8b'" in checked.stderr
    alias = user_models() / "mine.yaml"
    alias.write_text(
        "name: mine\naliases: [llama-8b]\nsource: {hf: x/y}\n"
        "architecture: {num_layers: 2, hidden_size: 64, num_attention_heads: 4, num_kv_heads: 4, vocab_size: 100}\n"
    )
    listed = runner.invoke(app, ["profiles", "list", "--kind", "model"])
    assert "shadows the shipped model 'llama-8b'" in " ".join(listed.stderr.split())


def test_check_profile_target_for_writers(tmp_path: Path) -> None:
    catalog = Catalog.discover()
    target = user_models() / "llama-3.1-8b.yaml"
    assert name_resolves(catalog, "model", "llama-8b") is not None
    with pytest.raises(UsageError, match=r"model name 'llama-3\.1-8b' already resolves to builtin:models"):
        check_profile_target(catalog, "model", "llama-3.1-8b", target)
    assert name_resolves(catalog, "model", "my-gptq") is None
    check_profile_target(catalog, "model", "my-gptq", user_models() / "my-gptq.yaml")  # free: no error
    ours = write_quantized("ours", tmp_path)
    assert written_by_llmops(ours)
    check_profile_target(Catalog.discover(), "model", "ours", ours)  # llmops's own file may be replaced
    hand = write_quantized("hand", tmp_path, header="# my notes\n")
    assert not written_by_llmops(hand)
    with pytest.raises(UsageError, match="exists and was not written by llmops"):
        check_profile_target(Catalog.discover(), "model", "hand", hand)
