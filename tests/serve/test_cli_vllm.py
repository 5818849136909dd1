"""`llmops serve` for vLLM on the seed fleet: the exact argv, --json, origins, refusals (no GPU needed)."""

from __future__ import annotations

import json

from llmops.serve.engines.llamacpp_selfcheck import CHILD as LLAMACPP_CHILD

from .conftest import pool_70b_tp4_pp2

LLAMA_70B_TP4 = (
    "vllm serve meta-llama/Llama-3.1-70B-Instruct --served-model-name llama-3.1-70b --host 127.0.0.1 "
    "--port 8000 --tensor-parallel-size 4 --gpu-memory-utilization 0.95 --max-model-len 4096 --dtype float16 "
    "--enable-prefix-caching --max-num-seqs 64"
)


def test_dry_run_prints_the_exact_vllm_command(cli) -> None:
    result = cli("serve", "llama-70b", "--tp", "4", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == LLAMA_70B_TP4
    assert "environment passed through by name: HF_TOKEN" in result.stdout
    # each value says where it came from
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
        for line in lines
        if line.startswith("│") and line.count("│") == 4
    }
    assert rows["tensor_parallel_size"] == ["4", "flag"]
    assert rows["max_model_len"] == ["4096", "profile"]
    assert rows["node"] == ["a100-40gb-x4", "profile"]
    assert rows["kv_cache_dtype"] == ["auto", "default"]


def test_json_gives_argv_and_env_by_name_only(cli, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    result = cli("serve", "llama-70b", "--tp", "4", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["argv"] == LLAMA_70B_TP4.split()
    assert doc["env"] == {}
    assert doc["env_from_host"] == {"HF_TOKEN": "${HF_TOKEN}"}
    assert doc["settings"]["tensor_parallel_size"] == {"value": 4, "origin": "flag"}
    assert doc["settings"]["gpu_memory_utilization"] == {"value": 0.95, "origin": "profile"}
    assert [c["name"] for c in doc["checks"]] == ["split", "gpus", "plan"] and all(
        c["ok"] for c in doc["checks"]
    )
    assert doc["ray_steps"] == []
    assert "hf_secret_value_123" not in result.output


def test_flags_win_over_profile_and_workspace(cli, isolated) -> None:
    (isolated / "llmops.yaml").write_text("serve:\n  port: 9001\n  host: 0.0.0.0\n")
    result = cli(
        "serve",
        "llama-8b",
        "--dry-run",
        "--json",
        "--host",
        "127.0.0.1",
        "--max-model-len",
        "4096",
        "--kv-cache-dtype",
        "fp8",
        "--no-enable-prefix-caching",
        "--quantization",
        "fp8",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["argv"] == [
        "vllm",
        "serve",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--served-model-name",
        "llama-3.1-8b",
        "--host",
        "127.0.0.1",
        "--port",
        "9001",
        "--tensor-parallel-size",
        "1",
        "--gpu-memory-utilization",
        "0.9",
        "--max-model-len",
        "4096",
        "--dtype",
        "bfloat16",
        "--quantization",
        "fp8",
        "--kv-cache-dtype",
        "fp8",
        "--no-enable-prefix-caching",
        "--max-num-seqs",
        "128",
    ]
    assert doc["settings"]["port"] == {"value": 9001, "origin": "workspace"}
    assert doc["settings"]["host"] == {"value": "127.0.0.1", "origin": "flag"}


def test_tp1_refuses_with_the_plans_numbers(cli) -> None:
    result = cli("serve", "llama-70b", "--tp", "1")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "does not fit: needs 131.4 GiB of weights per GPU" in result.stderr
    assert "recommendation: spread the model over 4 GPUs (tensor parallel 4)" in result.stderr
    assert "--force" in result.stderr


def test_force_overrides_the_plan_then_the_missing_engine_is_exit_3(cli, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", "current")  # llmops's own Python: no vLLM in it
    result = cli("serve", "llama-70b", "--tp", "1", "--force")
    assert result.exit_code == 3
    assert "pip install 'llmops[vllm]'" in result.stderr


def test_fitting_config_without_vllm_installed_is_exit_3_naming_the_fix(cli, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", "current")
    result = cli("serve", "llama-70b", "--tp", "4")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert "vllm is not installed in llmops's own Python; install it: `make vllm-env`" in result.stderr


def test_more_gpus_than_the_pool_is_refused(cli) -> None:
    result = cli("serve", "llama-70b", "--tp", "4", "--pp", "2", "--dry-run")
    assert result.exit_code == 2
    assert "8 GPUs needed, the pool has 4" in result.stderr


def test_beyond_one_node_uses_the_ray_backend_and_prints_ray_steps(cli, a100_pool) -> None:
    result = cli(
        *pool_70b_tp4_pp2(a100_pool),
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    command = result.stdout.splitlines()[0]
    assert "--tensor-parallel-size 4 --pipeline-parallel-size 2 --distributed-executor-backend ray" in command
    assert "ray start --head --port=6379 --num-gpus=4" in result.stdout
    assert "ray start --address=<head-node-ip>:6379 --num-gpus=4 --block" in result.stdout


def test_bad_flag_value_is_one_line_exit_2(cli) -> None:
    result = cli("serve", "llama-8b", "--dtype", "float8", "--dry-run")
    assert result.exit_code == 2
    assert "Invalid value for '--dtype'" in result.stderr and "float8" in result.stderr
    assert "Traceback" not in result.output


def test_bad_value_from_the_environment_or_workspace_names_where_it_came_from(
    cli, isolated, monkeypatch
) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_DTYPE", "float8")
    env = cli("serve", "llama-8b", "--dry-run")
    assert (
        env.exit_code == 2 and "LLMOPS_SERVE_DTYPE='float8' is invalid: expected one of auto," in env.stderr
    )
    monkeypatch.delenv("LLMOPS_SERVE_DTYPE")
    (isolated / "llmops.yaml").write_text("serve:\n  gpu_memory_utilization: 0.5\n")
    monkeypatch.setenv("LLMOPS_SERVE_GPU_MEMORY_UTILIZATION", "1.5")
    high = cli("serve", "llama-8b", "--dry-run")
    assert high.exit_code == 2
    assert (
        "invalid LLMOPS_SERVE_GPU_MEMORY_UTILIZATION = 1.5: Input should be less than or equal to 1"
        in high.stderr
    )


def test_dry_run_json_is_the_one_document_shape_with_env_and_workspace_origins(
    cli, isolated, monkeypatch
) -> None:
    (isolated / "llmops.yaml").write_text("node: h100-80gb-x8\nserve:\n  max_model_len: 2048\n  port: 9000\n")
    monkeypatch.setenv("LLMOPS_SERVE_PORT", "9100")
    monkeypatch.setenv("LLMOPS_SERVE_ENABLE_PREFIX_CACHING", "false")
    doc = json.loads(cli("serve", "llama-8b", "--dry-run", "--json", "--max-num-seqs", "32").stdout)
    assert doc["command"] == "serve"
    assert all(set(v) == {"value", "origin"} for v in doc["settings"].values())
    assert doc["settings"]["model"] == {"value": "llama-8b", "origin": "flag"}
    assert doc["settings"]["node"] == {"value": "h100-80gb-x8", "origin": "workspace"}
    assert doc["settings"]["engine"] == {"value": "vllm", "origin": "profile"}
    assert doc["settings"]["port"] == {"value": 9100, "origin": "env"}
    assert doc["settings"]["max_model_len"] == {"value": 2048, "origin": "workspace"}
    assert doc["settings"]["enable_prefix_caching"] == {"value": False, "origin": "env"}
    assert doc["settings"]["max_num_seqs"] == {"value": 32, "origin": "flag"}
    assert doc["settings"]["min_concurrency"] == {"value": 2.0, "origin": "default"}
    assert (
        "--no-enable-prefix-caching" in doc["argv"] and doc["argv"][doc["argv"].index("--port") + 1] == "9100"
    )
    assert doc["command_line"].startswith("vllm serve meta-llama/Llama-3.1-8B-Instruct")


def test_llamacpp_dry_run_for_smollm2(cli, smollm2_gguf) -> None:
    result = cli("serve", "smollm2", "--port", "8123", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["argv"][1:] == [
        "-P",
        str(LLAMACPP_CHILD),
        "serve",
        "auto",  # extra buffer types: settled by the CPU self-check at start
        "--model",
        str(smollm2_gguf),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--interrupt_requests",
        "False",
    ]
    assert doc["health_path"] is None
    assert doc["settings"]["extra_buffer_types"] == {"value": "auto", "origin": "default"}
    assert doc["settings"]["n_threads"] == {"value": 2, "origin": "profile"}  # the node's cores, as passed
    assert doc["checks"][1]["name"] == "plan" and doc["checks"][1]["ok"] is True


def test_run_settings_from_the_environment_are_checked_too(cli, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_PORT", "70000")
    result = cli("serve", "llama-8b", "--dry-run")
    assert result.exit_code == 2 and "invalid LLMOPS_SERVE_PORT = 70000" in result.stderr
    monkeypatch.delenv("LLMOPS_SERVE_PORT")
    stray = cli("serve", "llama-8b", "-o", "out.yaml")
    assert stray.exit_code == 2 and "-o/--output is where --k8s writes its manifests" in stray.stderr
