"""The one resolver: precedence flag > env > workspace > profile > default, origins, one dry-run shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.errors import UsageError
from llmops.settings import Resolver, dry_run_document, env_var, resolve_model_node
from llmops.workspace import BenchSection, Workspace


def test_precedence_and_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    ws = BenchSection(max_concurrency=4, input_len=64)
    r = Resolver("bench", ws)
    assert r.take("max_concurrency", 16) == 16
    monkeypatch.setenv("LLMOPS_BENCH_INPUT_LEN", "32")
    assert r.take("input_len") == 32  # parsed with the workspace field's type
    assert r.take("output_len", profile=100, default=128) == 100
    assert r.take("num_prompts", default=50) == 50
    assert r.resolved.as_json() == {
        "max_concurrency": {"value": 16, "origin": "flag"},
        "input_len": {"value": 32, "origin": "env"},
        "output_len": {"value": 100, "origin": "profile"},
        "num_prompts": {"value": 50, "origin": "default"},
    }


def test_workspace_beats_profile() -> None:
    r = Resolver("bench", BenchSection(output_len=7))
    assert r.take("output_len", profile=100) == 7
    assert r.resolved.origin("output_len") == "workspace"


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_BENCH_MAX_CONCURRENCY", "lots")
    with pytest.raises(UsageError, match="LLMOPS_BENCH_MAX_CONCURRENCY='lots'"):
        Resolver("bench", BenchSection()).take("max_concurrency")


def test_environment_values_keep_the_field_constraints(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmops.workspace import BatchSection

    monkeypatch.setenv("LLMOPS_BENCH_MAX_CONCURRENCY", "0")  # PositiveInt
    with pytest.raises(UsageError, match="LLMOPS_BENCH_MAX_CONCURRENCY"):
        Resolver("bench", BenchSection()).take("max_concurrency")
    monkeypatch.setenv("LLMOPS_BATCH_ENDPOINT_WAIT", "-1")
    with pytest.raises(UsageError, match="LLMOPS_BATCH_ENDPOINT_WAIT"):
        Resolver("batch", BatchSection()).take("endpoint_wait")


def test_env_var_names() -> None:
    assert env_var("bench", "max_concurrency") == "LLMOPS_BENCH_MAX_CONCURRENCY"
    assert env_var(None, "model") == "LLMOPS_MODEL"


def test_model_and_node_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmops.profiles.loader import Catalog

    catalog = Catalog.discover(None)
    r = Resolver()
    model, node = resolve_model_node(catalog, Workspace(), "llama-70b", None, resolver=r)
    assert model.profile.name == "llama-3.1-70b"
    assert node.profile.name == model.profile.default_node
    assert r.resolved.origin("node") == "profile"
    monkeypatch.setenv("LLMOPS_NODE", "rtx4090-x8")
    r = Resolver()
    _, node = resolve_model_node(catalog, Workspace(node="epyc-7763"), None, None, resolver=r)
    assert node.profile.name == "rtx4090-x8" and r.resolved.origin("node") == "env"
    assert r.resolved.as_json()["model"] == {"value": "smollm2", "origin": "default"}


def test_dry_run_document_shape() -> None:
    r = Resolver("trt")
    r.take("output", Path("out/x"))
    doc = dry_run_document("trt build", r.resolved, steps=["export"])
    assert doc == {
        "command": "trt build",
        "settings": {"output": {"value": "out/x", "origin": "flag"}},
        "steps": ["export"],
    }
