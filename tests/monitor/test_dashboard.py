"""The Grafana dashboard: valid JSON in the import format, every target's expression in the catalog."""

from __future__ import annotations

import json

import pytest

from llmops.monitor.dashboard import build, expressions, problems


@pytest.mark.parametrize("version", [None, "0.8", "0.10", "0.11"])
def test_every_expression_is_in_the_catalog(version: str | None) -> None:
    dash = json.loads(json.dumps(build(version)))
    assert problems(dash, version) == []
    assert len(expressions(dash)) > 30


def test_import_format_and_layout() -> None:
    dash = build()
    assert dash["__inputs"][0]["name"] == "DS_PROMETHEUS" and dash["__inputs"][0]["pluginId"] == "prometheus"
    assert dash["schemaVersion"] >= 36 and dash["uid"] == "llmops-fleet"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys() and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            assert p["targets"] and all(t["refId"] and t["expr"] for t in p["targets"])


def test_the_panels_the_issue_asks_for() -> None:
    text = " | ".join(p["title"] for p in build()["panels"]).lower()
    for want in (
        "requests/s by model",
        "5xx share",
        "ttft",
        "inter-token latency",
        "e2e latency",
        "tokens/s",
        "kv-cache usage",
        "waiting",
        "cost per hour",
        "cache hit rate",
        "gateway overhead",
        "deployment state",
    ):
        assert want in text, want


def test_old_vllm_gets_old_names() -> None:
    exprs = " ".join(e for _, e in expressions(build("0.8")))
    assert "vllm:gpu_cache_usage_perc" in exprs and "vllm:kv_cache_usage_perc" not in exprs
    assert "vllm:time_per_output_token_seconds_bucket" in exprs
    exprs = " ".join(e for _, e in expressions(build()))
    assert "vllm:inter_token_latency_seconds_bucket" in exprs and "gpu_" not in exprs
