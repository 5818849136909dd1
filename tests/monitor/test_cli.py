"""The monitor commands and doctor's --endpoint/--log through the CLI (CliRunner, and once a subprocess)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from typer.testing import CliRunner

from llmops.cli import app
from tests.conftest import run_llmops

runner = CliRunner()


def test_rules_to_a_file_then_promtool(tmp_path: Path, promtool: str) -> None:
    out = tmp_path / "rules.yml"
    res = runner.invoke(app, ["monitor", "rules", "-o", str(out)])
    assert res.exit_code == 0, res.output
    check = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    again = runner.invoke(app, ["monitor", "rules", "-o", str(out)])
    assert again.exit_code == 2  # no overwrite without --force
    assert runner.invoke(app, ["monitor", "rules", "-o", str(out), "--force"]).exit_code == 0


def test_rules_k8s_is_a_prometheus_rule(tmp_path: Path, promtool: str) -> None:
    out = tmp_path / "rule.yaml"
    res = runner.invoke(app, ["monitor", "rules", "--k8s", "--namespace", "llm", "-o", str(out)])
    assert res.exit_code == 0, res.output
    obj = yaml.safe_load(out.read_text())
    assert (obj["kind"], obj["metadata"]["namespace"]) == ("PrometheusRule", "llm")
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(obj["spec"]))
    assert subprocess.run([promtool, "check", "rules", str(spec)], capture_output=True).returncode == 0


def test_rules_json_and_workspace_thresholds(tmp_path: Path) -> None:
    ws = tmp_path / "llmops.yaml"
    ws.write_text("bench:\n  slos: {ttft_p99_ms: 500, error_rate: 0.01}\nmonitor:\n  error_rate: 0.02\n")
    res = runner.invoke(app, ["-c", str(ws), "monitor", "rules", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert "HighLLMErrorRate" in doc["alerts"] and "LLMSLOErrorBudgetBurn" in doc["alerts"]
    assert doc["recording_rules"] == 5 and doc["output"] is None
    text = runner.invoke(app, ["-c", str(ws), "monitor", "rules"]).stdout
    assert "> 0.02" in text and "slo: ttft_p99_ms" in text


def test_slo_threshold_off_the_buckets_is_exit_2(tmp_path: Path) -> None:
    ws = tmp_path / "llmops.yaml"
    ws.write_text("bench:\n  slos: {ttft_p99_ms: 1500}\n")
    res = runner.invoke(app, ["-c", str(ws), "monitor", "rules"])
    assert res.exit_code == 2
    assert "not a bucket boundary" in res.output and "1000 or 2000" in res.output


def test_dashboard_file_is_json(tmp_path: Path) -> None:
    out = tmp_path / "dash.json"
    res = runner.invoke(app, ["monitor", "dashboard", "-o", str(out), "--vllm-version", "0.10"])
    assert res.exit_code == 0, res.output
    dash = json.loads(out.read_text())
    assert dash["__inputs"][0]["name"] == "DS_PROMETHEUS"
    assert "vllm:time_per_output_token_seconds_bucket" in out.read_text()


def test_doctor_log_names_the_cause(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text(
        "INFO loading weights\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 39.4 GiB total)\n"
    )
    res = runner.invoke(app, ["doctor", "--log", str(log), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["ok"] is False
    (f,) = [f for f in doc["findings"] if f["status"] == "fail"]
    assert "CUDA out of memory" in f["message"] and "max-model-len" in f["action"]


def test_doctor_log_of_a_good_start_and_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text("INFO Started server process\nINFO Uvicorn running on http://127.0.0.1:8000\n")
    assert runner.invoke(app, ["doctor", "--log", str(log)]).exit_code == 0
    assert runner.invoke(app, ["doctor", "--log", str(tmp_path / "nope.log")]).exit_code == 2


def test_doctor_log_llamacpp_pattern(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text("gguf_init_from_file: invalid magic characters 'abcd'\n")
    res = runner.invoke(app, ["doctor", "--log", str(log), "-e", "llamacpp"])
    assert res.exit_code == 1 and "valid GGUF" in res.output


def test_rules_as_a_real_subprocess() -> None:
    res = run_llmops("monitor", "rules")
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout)["groups"][0]["name"] == "llmops-gateway"
