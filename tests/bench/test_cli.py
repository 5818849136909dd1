"""The command: SLO gates and exit codes, dead servers, files, the workspace, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli import app

runner = CliRunner()


def bench(*args: str):
    return runner.invoke(app, ["bench", *args])


def test_slo_pass_exits_0_and_writes_result(fake_server, tmp_path: Path) -> None:
    base = fake_server(ttft_ms=20, gap_ms=2, tokens=8)
    out = tmp_path / "result.json"
    res = bench(
        "--target",
        base + "/v1",
        "--num-prompts",
        "16",
        "--max-concurrency",
        "4",
        "--slo",
        "ttft_p99_ms=500",
        "--slo",
        "error_rate=0.01",
        "-o",
        str(out),
        "--json",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    printed = json.loads(res.stdout)
    assert printed["completed"] == doc["completed"] == 16
    for key in (
        "failed",
        "duration",
        "request_throughput",
        "output_throughput",
        "mean_ttft_ms",
        "median_ttft_ms",
        "p99_ttft_ms",
        "mean_itl_ms",
        "median_itl_ms",
        "p99_itl_ms",
        "mean_tpot_ms",
        "mean_e2el_ms",
    ):
        assert key in doc
    assert doc["config"]["slos"] == {"ttft_p99_ms": 500.0, "error_rate": 0.01}
    assert doc["environment"]["client"].startswith("llmops")
    server = doc["server_metrics"]  # the fake's /metrics: 25% prefix-cache hits, its own TTFT ~20 ms
    assert server["prefix_cache_hit_rate"] == 0.25
    assert 19 < server["server_mean_ttft_ms"] < 30
    assert doc["passed"] is True
    assert 0.0 <= doc["host_steal_share"] <= 1.0  # the hypervisor's share of CPU time during the run


def test_slo_breach_exits_1_and_says_by_how_much(fake_server) -> None:
    base = fake_server(ttft_ms=60, gap_ms=2, tokens=8)
    res = bench(
        "--target",
        base,
        "--num-prompts",
        "8",
        "--max-concurrency",
        "4",
        "--slo",
        "ttft_p99_ms=30",
        "--slo",
        "error_rate=0.01",
    )
    assert res.exit_code == 1
    assert "ttft_p99_ms" in res.stderr and "BROKEN" in res.stderr and "+" in res.stderr
    assert "error_rate" not in res.stderr.split("bench failed:")[1]  # only the broken SLO is named


def test_server_dying_mid_run_is_counted_not_hung(fake_server) -> None:
    base = fake_server(ttft_ms=20, gap_ms=20, tokens=20, die_after=10)
    res = bench(
        "--target", base, "--num-prompts", "40", "--max-concurrency", "4", "--timeout", "10", "--json"
    )
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["failed"] > 0 and doc["completed"] + doc["failed"] == 40
    assert set(doc["errors"]) <= {"disconnected", "connect"}
    assert doc["passed"] is False


def test_stalled_server_times_out(fake_server) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4, stall_after=5)
    res = bench("--target", base, "--num-prompts", "12", "--max-concurrency", "3", "--timeout", "1", "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["errors"].get("timeout", 0) > 0


def test_baseline_regression_gates(fake_server, tmp_path: Path) -> None:
    fast = fake_server(ttft_ms=10, gap_ms=2, tokens=8)
    old = tmp_path / "old.json"
    assert (
        bench("--target", fast, "--num-prompts", "8", "--max-concurrency", "2", "-o", str(old)).exit_code == 0
    )
    slow = fake_server(ttft_ms=60, gap_ms=2, tokens=8)
    res = bench(
        "--target",
        slow,
        "--num-prompts",
        "8",
        "--max-concurrency",
        "2",
        "--baseline",
        str(old),
        "--max-regression",
        "10",
    )
    assert res.exit_code == 1
    assert "median_ttft_ms vs baseline" in res.stderr


def test_workspace_drives_plain_bench(fake_server, tmp_path: Path) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    Path("llmops.yaml").write_text(
        f"bench:\n  target: {base}\n  num_prompts: 6\n  max_concurrency: 2\n  slos:\n    ttft_p99_ms: 1\n"
    )
    res = bench("--json")
    assert res.exit_code == 1  # 1 ms p99 TTFT cannot hold against a 5 ms server
    doc = json.loads(res.stdout)
    assert doc["completed"] == 6 and doc["config"]["origins"]["target"] == "workspace"


def test_sweep_and_html(fake_server, tmp_path: Path) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    html = tmp_path / "r.html"
    res = bench(
        "--target",
        base,
        "--num-prompts",
        "8",
        "--sweep",
        "--sweep-values",
        "1,4",
        "--html",
        str(html),
        "--json",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [p["max_concurrency"] for p in doc["sweep"]] == [1, 4]
    text = html.read_text()
    assert "<svg" in text and "Sweep" in text and "http" not in text.split("<body>")[1].split("at ")[0]
    assert "<script" not in text


def test_refuses_to_overwrite_and_bad_input(fake_server, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("mine")
    res = bench("--target", "http://127.0.0.1:9", "-o", str(out))
    assert res.exit_code == 2 and "already exists" in res.stderr
    assert out.read_text() == "mine"
    assert bench("--target", "http://127.0.0.1:9", "--slo", "ttft_p42_ms=3").exit_code == 2
    assert bench("--target", "http://127.0.0.1:9", "--request-rate", "fast").exit_code == 2
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "hi"}\n{"promt": "typo"}\n')
    res = bench("--target", "http://127.0.0.1:9", "--model", "m", "--dataset", f"jsonl:{bad}")
    assert res.exit_code == 2 and "p.jsonl:2" in res.stderr


def test_unreachable_target_fails_fast_with_hint() -> None:
    res = bench("--target", "http://127.0.0.1:9", "--model", "m", "--timeout", "2")
    assert res.exit_code == 1 and "warmup" in res.stderr


def test_the_table_shows_figures_for_people_and_json_keeps_full_precision(fake_server) -> None:
    """Issue 19: the server view printed `KV peak 0.011019283746556474`, `server mean TTFT ms
    181.5386969467689`. Every figure is formatted in the table; --json keeps the numbers as measured."""
    import re

    base = fake_server(ttft_ms=20, gap_ms=2, tokens=8)
    args = ("--target", base + "/v1", "--num-prompts", "8", "--max-concurrency", "4")
    res = bench(*args)
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "prefix hit rate 25.0%" in text
    assert re.search(r"server mean TTFT \d{2}\.\d{1,2} ms", text), text
    assert re.search(r"duration \S* ?\d+(\.\d+)? (ms|s)\b", text), text
    assert re.search(r"output throughput \S* ?[\d,]+(\.\d+)? tok/s", text), text
    assert not re.search(r"\d\.\d{5,}", text), text  # no raw float anywhere
    assert not re.search(r"\d[eE][+-]\d", text), text
    assert re.search(r"host CPU steal \(hypervisor\) \S* ?\d+(\.\d)?%", text), text
    doc = json.loads(bench(*args, "--json").stdout)
    ttft = doc["server_metrics"]["server_mean_ttft_ms"]
    assert isinstance(ttft, float) and ttft != round(ttft, 2)  # full precision for scripts
