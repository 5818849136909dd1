"""The CLI through CliRunner and as a real subprocess: exit codes, one-line errors, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def llmops_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmops", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=120,
    )


def test_version_and_help() -> None:
    from llmops import __version__

    assert run("--version").output.strip() == f"llmops {__version__}"
    result = run("--help")
    assert result.exit_code == 0
    for group in ("profiles", "doctor", "init"):
        assert group in result.output


def test_profiles_list_json_is_one_document() -> None:
    result = run("--json", "profiles", "list")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"node", "model", "provider"} == set(data)
    models = {m["name"]: m for m in data["model"]}
    assert "llama-70b" in models["llama-3.1-70b"]["aliases"]


def test_command_level_json_flag() -> None:
    result = run("profiles", "show", "llama-70b", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert (
        doc["name"] == "llama-3.1-70b"
        and doc["kind"] == "model"
        and doc["file"].endswith("llama-3.1-70b.yaml")
    )


def test_unknown_profile_is_exit_2_one_line() -> None:
    result = run("profiles", "show", "llama-70")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "no profile named 'llama-70'" in result.stderr and "llama-70b" in result.stderr
    assert "Traceback" not in result.output


def test_validate_bad_file_exit_2_one_line_per_problem(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / "bad.yaml").write_text(
        "name: bad\ngpu:\n  model: A100\n  count: -1\n  memroy_gib: 4\ncpu: {cores: 2, ram_gib: 4}\n"
    )
    result = run("profiles", "validate", str(tmp_path))
    assert result.exit_code == 2
    problem_lines = [line for line in result.stderr.splitlines() if str(nodes / "bad.yaml") in line]
    assert len(problem_lines) == 3  # negative count, typo'd key, and gpu.memory_gib missing
    assert any(
        ":5: gpu.memroy_gib: unknown key; did you mean 'memory_gib'?" in line for line in problem_lines
    )


def test_validate_json(tmp_path: Path) -> None:
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "ok.yaml").write_text("name: ok\ncpu: {cores: 2, ram_gib: 4}\n")
    result = run("profiles", "validate", str(tmp_path), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"files": [str(tmp_path / "nodes" / "ok.yaml")], "problems": []}


def test_init_writes_starter_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "llmops.yaml"
    assert run("init", str(target)).exit_code == 0
    from llmops.workspace import load_workspace

    ws = load_workspace(target)
    assert ws.model == "smollm2" and ws.node == "local-cpu" and ws.bench.slos["ttft_p99_ms"] == 2000
    target.write_text("# mine\n")
    again = run("init", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert target.read_text() == "# mine\n"


def test_init_rejects_unknown_model(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "llmops.yaml"), "--model", "gpt-5")
    assert result.exit_code == 2 and "model 'gpt-5' not found" in result.stderr
    assert not (tmp_path / "llmops.yaml").exists()


def test_bad_workspace_file_names_file_line_and_field() -> None:
    Path("llmops.yaml").write_text("model: smollm2\nbench:\n  num_promts: 10\n")
    from llmops.errors import ProfileProblems
    from llmops.workspace import load_workspace

    with pytest.raises(ProfileProblems) as info:
        load_workspace()
    assert info.value.render() == "llmops.yaml:3: bench.num_promts: unknown key; did you mean 'num_prompts'?"


def test_doctor_json_never_shows_key_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value-123")
    result = run("doctor", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["api_keys"]["OPENAI_API_KEY"] is True and report["api_keys"]["ANTHROPIC_API_KEY"] is False
    assert "sk-test-secret-value-123" not in result.output
    names = {p["name"]: p["version"] for p in report["packages"]}
    assert names["llama-cpp-python"] is not None
    caps = {c["name"]: c for c in report["capabilities"]}
    assert caps["serve (llama.cpp, CPU)"]["ready"] is True
    if not report["gpus"]:
        assert caps["trt engine"]["ready"] is False


def test_subprocess_exit_codes_and_streams(tmp_path: Path) -> None:
    ok = llmops_subprocess("profiles", "list", "--kind", "node", "--json", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stderr == ""
    assert {n["name"] for n in json.loads(ok.stdout)["node"]} >= {"a100-40gb-x4", "local-cpu"}
    bad = llmops_subprocess("profiles", "show", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    usage = llmops_subprocess("profiles", "list", "--no-such-flag", cwd=tmp_path)
    assert usage.returncode == 2


def test_verbose_shows_traceback(tmp_path: Path) -> None:
    result = llmops_subprocess("-v", "profiles", "show", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_help_imports_no_heavy_module(tmp_path: Path) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from llmops.cli import app;"
        "CliRunner().invoke(app, ['--help']); CliRunner().invoke(app, ['profiles', 'list']);"
        "heavy = {'torch','transformers','vllm','tensorrt','llama_cpp','openai','anthropic'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_shell_completion_offers_profile_names(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "_LLMOPS_COMPLETE": "complete_bash",
        "COMP_WORDS": "llmops profiles show llama-7",
        "COMP_CWORD": "3",
    }
    out = subprocess.run(
        [sys.executable, "-m", "llmops"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert out.stdout.split() == ["llama-70b"]
