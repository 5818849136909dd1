"""`llmops plan` through CliRunner, and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_report_for_the_seed_deployment() -> None:
    result = invoke("plan", "llama-70b", "--node", "a100-40gb-x4")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "llama-3.1-70b on a100-40gb-x4" in out
    assert "weights per GPU" in out and "32.85 GiB" in out
    assert "KV cache tokens" in out and "max concurrency" in out
    assert "fits: 32.9 GiB weights per GPU" in out
    assert "what to change" in out and "--kv-cache-dtype fp8" in out


def test_json_for_the_seed_deployment_at_tp4_and_tp1() -> None:
    tp4 = json.loads(invoke("plan", "llama-70b", "--node", "a100-40gb-x4", "--tp", "4", "--json").stdout)
    assert tp4["fits"] is True and tp4["tp"] == 4 and tp4["kv_cache_tokens"] > 25_000
    assert tp4["weights_gib_per_gpu"] == 32.85 and tp4["kv_bytes_per_token_per_gpu"] == 81920
    assert tp4["recommendations"]
    tp1 = json.loads(invoke("plan", "llama-70b", "--node", "a100-40gb-x4", "--tp", "1", "--json").stdout)
    assert tp1["fits"] is False and tp1["verdict"] == "does-not-fit" and tp1["shortfall_gib"] > 90
    assert tp1["recommendations"][0]["changes"] == {"tensor_parallel_size": 4}


def test_tp1_report_says_does_not_fit_by_how_much() -> None:
    result = invoke("plan", "llama-70b", "--node", "a100-40gb-x4", "--tp", "1")
    assert result.exit_code == 0
    assert "does not fit: needs 131.4 GiB of weights per GPU" in result.output and "short by" in result.output


def test_flags_override_the_profile() -> None:
    doc = json.loads(
        invoke(
            "plan",
            "llama-8b",
            "--node",
            "rtx4090",
            "--max-model-len",
            "4096",
            "--dtype",
            "float16",
            "--kv-cache-dtype",
            "fp8",
            "--gpu-memory-utilization",
            "0.8",
            "--gpus",
            "2",
            "--gpu-memory-gib",
            "47.5",
            "--json",
        ).stdout
    )
    assert (doc["max_model_len"], doc["dtype"], doc["kv_cache_dtype"]) == (4096, "float16", "fp8")
    assert (doc["gpu_memory_utilization"], doc["gpus"], doc["gpu_memory_gib"]) == (0.8, 2, 47.5)
    assert doc["origins"]["max_model_len"] == "flag" and doc["replicas"] == 2


def test_bad_choice_is_a_usage_error() -> None:
    result = invoke("plan", "llama-8b", "--quantization", "int3")
    assert result.exit_code == 2


def test_all_nodes_compares_every_node() -> None:
    doc = json.loads(invoke("plan", "llama-70b", "--all-nodes", "--json").stdout)
    rows = {row["node"]: row for row in doc["nodes"]}
    assert set(rows) >= {"a100-40gb-x4", "rtx4090-x8", "h100-80gb-x8", "epyc-7763", "local-cpu"}
    assert rows["a100-40gb-x4"]["plan"]["verdict"] == "fits"
    assert rows["epyc-7763"]["plan"]["device"] == "cpu"  # vLLM's CPU build, planned in RAM
    table = invoke("plan", "llama-70b", "--all-nodes")
    assert table.exit_code == 0 and "h100-80gb-x8" in table.output


def test_defaults_come_from_the_workspace(tmp_path: Path) -> None:
    (Path.cwd() / "llmops.yaml").write_text("model: llama-8b\nnode: h100-80gb-x8\n")
    doc = json.loads(invoke("plan", "--json").stdout)
    assert (doc["model"], doc["node"]) == ("llama-3.1-8b", "h100-80gb-x8")


def test_cpu_node_plans_llamacpp_and_vllm_cpu_and_refuses_bad_tp_as_a_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ok = subprocess.run(
        [sys.executable, "-m", "llmops", "plan", "smollm2", "--node", "epyc-7763", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["device"] == "cpu" and doc["fits"] is True and doc["engine"] == "llamacpp"
    cpu_vllm = subprocess.run(
        [sys.executable, "-m", "llmops", "plan", "llama-70b", "--node", "epyc-7763", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert cpu_vllm.returncode == 0, cpu_vllm.stderr
    doc = json.loads(cpu_vllm.stdout)
    assert doc["device"] == "cpu" and doc["engine"] == "vllm" and doc["gpus"] == 0
    refused = subprocess.run(
        [sys.executable, "-m", "llmops", "plan", "llama-70b", "--node", "epyc-7763", "--tp", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().startswith(
        "error: llama-3.1-70b has 64 attention heads, not divisible by tp 3"
    )
    assert "Traceback" not in refused.stderr


def test_flag_choices_come_from_the_settings_table() -> None:
    from typing import get_args

    from llmops.profiles.schema import Dtype, KvCacheDtype, Quantization
    from llmops.profiles.serving import BY_NAME

    assert get_args(Dtype) == BY_NAME["dtype"].choices
    assert get_args(Quantization) == BY_NAME["quantization"].choices
    assert get_args(KvCacheDtype) == BY_NAME["kv_cache_dtype"].choices
    help_text = invoke("plan", "--help").output
    for flag in ("--tp", "--quantization", "--kv-cache-dtype", "--min-concurrency", "--vllm-version"):
        assert flag in help_text


def test_plan_resolves_model_node_and_settings_as_serve_does(monkeypatch) -> None:
    Path("llmops.yaml").write_text("serve:\n  max_model_len: 2048\n")
    monkeypatch.setenv("LLMOPS_NODE", "h100-80gb-x8")
    monkeypatch.setenv("LLMOPS_SERVE_KV_CACHE_DTYPE", "fp8")
    doc = json.loads(invoke("plan", "llama-70b", "--json").stdout)
    assert doc["node"] == "h100-80gb-x8"  # -n/--node, else $LLMOPS_NODE, else workspace, else the model's
    assert (doc["max_model_len"], doc["origins"]["max_model_len"]) == (2048, "workspace")
    assert (doc["kv_cache_dtype"], doc["origins"]["kv_cache_dtype"]) == ("fp8", "env")
    assert (doc["tp"], doc["origins"]["tp"]) == (4, "profile")
    assert doc["min_concurrency"] == 2.0 and doc["vllm_version"] == "0.19"
    flagged = json.loads(
        invoke("plan", "llama-70b", "-n", "a100-40gb-x4", "--vllm-version", "0.6.4", "--json").stdout
    )
    assert flagged["node"] == "a100-40gb-x4" and flagged["non_torch_gib_per_gpu"] == 0.75


def test_plan_refuses_a_setting_the_engine_ignores() -> None:
    result = invoke("plan", "smollm2", "--kv-cache-dtype", "fp8")
    assert result.exit_code == 2
    assert (
        "engine llamacpp does not use this setting: kv_cache_dtype='fp8' (--kv-cache-dtype)" in result.stderr
    )
    trt = invoke("plan", "llama-70b", "-e", "trtllm")
    assert trt.exit_code == 2 and "engine trtllm does not use these settings" in trt.stderr
