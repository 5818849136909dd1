"""Profiles: the shipped fleet loads, names resolve through aliases, bad files give file:line problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from llmops.errors import NotFoundError, ProfileProblems
from llmops.profiles import Catalog
from llmops.profiles.checkpoint import architecture_from_gguf, model_from_path
from llmops.profiles.validate import validate_paths


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_fleet_loads_with_real_numbers() -> None:
    catalog = Catalog.discover()
    assert {"a100-40gb-x4", "rtx4090-x8", "epyc-7763", "h100-80gb-x8", "local-cpu"} <= {
        n.profile.name for n in catalog.all("node")
    }
    a100 = catalog.node("a100-40gb-x4").profile
    assert a100.gpu and a100.gpu.count == 4 and 39 < a100.gpu.memory_gib < 40
    assert catalog.node("epyc-7763").profile.gpu is None
    llama70 = catalog.model("llama-70b").profile
    assert llama70.name == "llama-3.1-70b"
    arch = llama70.architecture
    assert arch and (arch.num_layers, arch.hidden_size, arch.num_kv_heads, arch.vocab_size) == (
        80,
        8192,
        8,
        128256,
    )
    assert llama70.serving.tensor_parallel_size == 4 and llama70.serving.gpu_memory_utilization == 0.95
    assert catalog.model("llama-8b").profile.architecture.num_layers == 32
    assert catalog.model("mistral-7b").profile.architecture.vocab_size == 32768
    smol = catalog.model("smollm2").profile
    assert smol.engine == "llamacpp" and smol.default_node == "local-cpu"
    openai = catalog.provider("openai").profile
    assert openai.api_key_env == "OPENAI_API_KEY" and openai.model("gpt-4o-mini").input_per_1m == 0.15
    assert catalog.provider("anthropic").profile.batch.max_requests == 100_000


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(NotFoundError) as info:
        Catalog.discover().model("llama-7b")
    assert "did you mean" in info.value.render() and "llama-8b" in info.value.render()
    assert info.value.exit_code == 2


def test_search_order_profiles_dir_wins(tmp_path: Path) -> None:
    write(
        tmp_path / "nodes" / "local.yaml",
        """\
        name: local-cpu
        cpu: {cores: 64, ram_gib: 256}
        """,
    )
    catalog = Catalog.discover(tmp_path)
    loaded = catalog.node("local-cpu")
    assert loaded.profile.cpu.cores == 64 and loaded.source == tmp_path / "nodes" / "local.yaml"


def test_env_profiles_and_cwd_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = tmp_path / "env"
    write(env_dir / "nodes" / "envnode.yaml", "name: envnode\ncpu: {cores: 1, ram_gib: 1}\n")
    write(Path.cwd() / "configs" / "nodes" / "cwdnode.yaml", "name: cwdnode\ncpu: {cores: 1, ram_gib: 1}\n")
    monkeypatch.setenv("LLMOPS_PROFILES", str(env_dir))
    catalog = Catalog.discover()
    assert catalog.node("envnode").source.parent.parent == env_dir
    assert catalog.node("cwdnode").profile.name == "cwdnode"


BAD_NODE = """\
name: bad-node
gpu:
  model: A100
  count: -2
  memory_gb: 40
  memory_gib: lots
cpu:
  cores: 8
  ram_gib: 64
"""


def test_validate_reports_every_problem_with_line_and_field(tmp_path: Path) -> None:
    write(tmp_path / "nodes" / "bad.yaml", BAD_NODE)
    write(tmp_path / "nodes" / "indent.yaml", "name: x\ngpu:\n  model: A100\n   count: 2\n")
    write(
        tmp_path / "models" / "m.yaml",
        """\
        name: m
        source: {hf: a/b}
        architecture: {num_layers: 2, hidden_size: 8, num_attention_heads: 2, num_kv_heads: 1, vocab_size: 10}
        default_node: a100-40gb
        """,
    )
    report = validate_paths([tmp_path], Catalog.discover())
    lines = [p.render() for p in report.problems]
    bad = str(tmp_path / "nodes" / "bad.yaml")
    assert f"{bad}:4: gpu.count: Input should be greater than 0 (got -2)" in lines
    assert f"{bad}:5: gpu.memory_gb: unknown key; did you mean 'memory_gib'?" in lines
    assert any(line.startswith(f"{bad}:6: gpu.memory_gib: Input should be a valid number") for line in lines)
    assert any(line.startswith(f"{tmp_path / 'nodes' / 'indent.yaml'}:4: invalid YAML") for line in lines)
    assert (
        f"{tmp_path / 'models' / 'm.yaml'}:4: default_node: unknown node 'a100-40gb'; did you mean 'a100-40gb-x4'?"
        in lines
    )
    assert len(lines) == 5


def test_kind_from_key_or_folder(tmp_path: Path) -> None:
    loose = write(tmp_path / "anywhere.yaml", "kind: node\nname: n1\ncpu: {cores: 2, ram_gib: 4}\n")
    assert validate_paths([loose]).ok
    unknown = write(tmp_path / "other.yaml", "name: n2\n")
    report = validate_paths([unknown])
    assert "add `kind: node|model|provider`" in report.problems[0].message


def test_duplicate_alias_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "nodes" / "a.yaml", "name: a\naliases: [shared]\ncpu: {cores: 2, ram_gib: 4}\n")
    write(tmp_path / "nodes" / "b.yaml", "name: b\naliases: [shared]\ncpu: {cores: 2, ram_gib: 4}\n")
    report = validate_paths([tmp_path])
    assert [p.field for p in report.problems] == ["aliases"]
    assert "'shared' is already a name or alias" in report.problems[0].message


def test_broken_file_on_search_path_is_an_error_not_ignored(tmp_path: Path) -> None:
    write(tmp_path / "nodes" / "bad.yaml", BAD_NODE)
    with pytest.raises(ProfileProblems) as info:
        Catalog.discover(tmp_path).node("local-cpu")
    assert info.value.exit_code == 2 and "gpu.count" in info.value.render()


def test_model_source_needs_exactly_one_location(tmp_path: Path) -> None:
    write(
        tmp_path / "models" / "two.yaml",
        """\
        name: two
        source: {hf: a/b, path: /x}
        config: config.json
        """,
    )
    report = validate_paths([tmp_path])
    assert (
        report.problems[0].field == "source"
        and "exactly one of hf, path or gguf" in report.problems[0].message
    )


def test_model_from_checkpoint_dir(tmp_path: Path) -> None:
    import json

    ckpt = tmp_path / "my-model"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(
        json.dumps(
            {
                "num_hidden_layers": 4,
                "hidden_size": 256,
                "num_attention_heads": 8,
                "num_key_value_heads": 2,
                "vocab_size": 1000,
                "intermediate_size": 512,
                "tie_word_embeddings": True,
                "torch_dtype": "bfloat16",
            }
        )
    )
    profile = Catalog.discover().model(str(ckpt)).profile
    assert profile.name == "my-model" and profile.architecture.num_kv_heads == 2
    assert profile.architecture.resolved_head_dim == 32 and profile.architecture.tie_word_embeddings


@pytest.mark.slow
def test_gguf_metadata_matches_the_profile(smollm2_gguf: Path) -> None:
    arch = architecture_from_gguf(smollm2_gguf)
    shipped = Catalog.discover().model("smollm2").profile.architecture
    for field in (
        "num_layers",
        "hidden_size",
        "num_attention_heads",
        "num_kv_heads",
        "head_dim",
        "vocab_size",
        "intermediate_size",
        "tie_word_embeddings",
    ):
        assert getattr(arch, field) == getattr(shipped, field), field
    assert model_from_path(smollm2_gguf).engine == "llamacpp"
