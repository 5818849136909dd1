"""The generated rules under the real promtool: `check rules` on every file, and unit tests showing each
alert firing on a series that breaks it and silent on a healthy one (tests/monitor/promtool/*.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.monitor.config import resolve
from llmops.monitor.rules import RuleSet, build, prometheus_rule, to_yaml
from llmops.workspace import Workspace
from tests.monitor.conftest import PROMTOOL_TESTS, TEST_SLOS

UNIT_FILES = ("gateway.yml", "vllm.yml", "llamacpp.yml", "slo.yml")


def ruleset(**monitor: Any) -> RuleSet:
    ws = Workspace.model_validate({"bench": {"slos": TEST_SLOS}, "monitor": monitor})
    return build(resolve(ws))


def run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=120)


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def with_annotations(test_doc: dict[str, Any], rules: RuleSet) -> dict[str, Any]:
    """Fill each expected alert's annotations from the rule it names (promtool compares them exactly)."""
    all_rules = [r for g in rules.groups for r in g["rules"] if "alert" in r]
    for case in test_doc["tests"]:
        for art in case.get("alert_rule_test", []):
            for exp in art.get("exp_alerts") or []:
                labels = {k: str(v) for k, v in exp["exp_labels"].items()}
                rule = next(
                    r
                    for r in all_rules
                    if r["alert"] == art["alertname"]
                    and all(labels.get(k) == str(v) for k, v in r.get("labels", {}).items())
                )
                exp["exp_annotations"] = {k: _render(v, labels) for k, v in rule["annotations"].items()}
    return test_doc


def promtool_unit(promtool: str, tmp_path: Path, name: str, rules: RuleSet) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yml").write_text(to_yaml(rules.document()))
    doc = with_annotations(yaml.safe_load((PROMTOOL_TESTS / name).read_text()), rules)
    test_file = tmp_path / name
    test_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return run(promtool, "test", "rules", test_file)


def test_generated_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    rules = ruleset()
    path = tmp_path / "rules.yml"
    path.write_text(to_yaml(rules.document()))
    res = run(promtool, "check", "rules", path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rules.groups)} rules found" in res.stdout


def test_prometheus_rule_spec_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    obj = prometheus_rule(ruleset(), namespace="llm")
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    path = tmp_path / "spec.yml"
    path.write_text(to_yaml(obj["spec"]))
    res = run(promtool, "check", "rules", path)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("version", ["0.8", "0.9", "0.10", "0.11", None])
def test_rules_for_each_vllm_version_check_clean(promtool: str, tmp_path: Path, version: str | None) -> None:
    rules = ruleset(vllm_version=version)
    assert rules.problems() == []
    path = tmp_path / "rules.yml"
    path.write_text(to_yaml(rules.document()))
    assert run(promtool, "check", "rules", path).returncode == 0
    text = path.read_text()
    old = version in ("0.8",)
    assert ("vllm:gpu_cache_usage_perc" in text) == old
    assert ("vllm:kv_cache_usage_perc" in text) != old


@pytest.mark.parametrize("name", UNIT_FILES)
def test_promtool_unit_tests(promtool: str, tmp_path: Path, name: str) -> None:
    res = promtool_unit(promtool, tmp_path, name, ruleset())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    """Each alert llmops ships appears in the unit tests once firing and once expected silent."""
    rules = ruleset()
    firing: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for name in UNIT_FILES:
        doc = yaml.safe_load((PROMTOOL_TESTS / name).read_text())
        for case in doc["tests"]:
            series = " ".join(s["series"] for s in case["input_series"])
            subjects = set(re.findall(r'(?:model|route|instance|deployment)="([^"]+)"', series))
            for art in case.get("alert_rule_test", []):
                exps = art.get("exp_alerts") or []
                named = {str(v) for e in exps for v in e["exp_labels"].values()}
                firing |= {(art["alertname"], str(e["exp_labels"].get("slo", ""))) for e in exps}
                if not exps or subjects - named:  # nothing fires, or a healthy subject stays silent
                    silent.add(art["alertname"])
    shipped = {
        (r["alert"], str(r.get("labels", {}).get("slo", "")))
        for g in rules.groups
        for r in g["rules"]
        if "alert" in r
    }
    assert shipped - firing == set(), "alerts with no firing test"
    assert {a for a, _ in shipped} - silent == set(), "alerts with no silent case"


def test_a_broken_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """The harness is not vacuous: expecting a healthy series to fire makes promtool fail."""
    rules = ruleset()
    (tmp_path / "rules.yml").write_text(to_yaml(rules.document()))
    doc = yaml.safe_load((PROMTOOL_TESTS / "gateway.yml").read_text())
    doc["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["model"] = "ok"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(with_annotations(doc, rules)))
    res = run(promtool, "test", "rules", tmp_path / "bad.yml")
    assert res.returncode != 0


def test_seed_cost_alert_never_fires_and_the_catalog_says_why(promtool: str, tmp_path: Path) -> None:
    for f in ("seed.yml", "seed_rules.yml"):
        shutil.copy(PROMTOOL_TESTS / f, tmp_path / f)
    res = run(promtool, "test", "rules", tmp_path / "seed.yml")
    assert res.returncode == 0, res.stdout + res.stderr  # silent while $300/h is spent
    from llmops.monitor.promql import check

    seed = yaml.safe_load((PROMTOOL_TESTS / "seed_rules.yml").read_text())
    problems = {r["alert"]: check(r["expr"]) for r in seed["groups"][0]["rules"]}
    assert problems["LLMCostSpike"] == [
        "'llm_cost_total_dollars' is not a metric in the catalog (llmops.monitor.catalog)"
    ]
    assert problems["HighLLMErrorRate"] == [] and problems["HighLLMLatency"] == []
    # ...and ours fires on the same series (gateway.yml's LLMCostSpike case).
