"""Every gate and target is checked before the first request (issue 11), and a closed connection fails fast.

Reproduced on main: `--baseline` with `{}` compared nothing and exited 0 (a CI gate silently off); a
baseline with wrong types crashed after the whole run; `--slo ttft_p99_ms=-5` or `=nan` ran the benchmark
and then failed; `--target 127.0.0.1:P` was an internal error; a port that accepts and closes at once
made every request wait the full --timeout.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from llmops.cli import app

runner = CliRunner()


def bench(*args: str):
    return runner.invoke(app, ["bench", *args])


def requests_seen(base: str) -> int:
    return httpx.get(base + "/stats").json()["requests"]


@pytest.mark.parametrize(
    ("baseline", "fragment"),
    [
        ({}, "none of the figures a comparison reads"),
        ({"median_ttft_ms": "fast", "request_throughput": 3.0}, "median_ttft_ms is 'fast', not a number"),
        ({"p99_ttft_ms": None, "request_throughput": [1]}, "request_throughput is [1], not a number"),
    ],
)
def test_a_baseline_that_cannot_gate_is_refused_before_the_run(
    fake_server, tmp_path: Path, baseline: dict, fragment: str
) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    path = tmp_path / "main.json"
    path.write_text(json.dumps(baseline))
    res = bench("--target", base, "--num-prompts", "4", "--baseline", str(path))
    assert res.exit_code == 2, res.output
    assert fragment in res.stderr and "main.json" in res.stderr
    assert requests_seen(base) == 0  # refused before anything was sent


def test_a_binary_baseline_is_exit_2_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "main.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    res = bench("--target", "http://127.0.0.1:9", "--baseline", str(path))
    assert res.exit_code == 2 and "main.json" in res.stderr and "internal error" not in res.stderr


@pytest.mark.parametrize("slo", ["ttft_p99_ms=-5", "ttft_p99_ms=nan", "ttft_p99_ms=inf", "error_rate=2"])
def test_an_slo_that_cannot_hold_or_break_is_refused_before_the_run(fake_server, slo: str) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    res = bench("--target", base, "--num-prompts", "4", "--slo", slo)
    assert res.exit_code == 2, res.output
    assert slo.split("=")[0] in res.stderr
    assert requests_seen(base) == 0


def test_a_workspace_slo_is_checked_too(fake_server) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    Path("llmops.yaml").write_text(f"bench:\n  target: {base}\n  slos:\n    e2el_p99_ms: -1\n")
    res = bench("--num-prompts", "4")
    assert res.exit_code == 2 and "e2el_p99_ms" in res.stderr
    assert requests_seen(base) == 0


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("127.0.0.1:8000", "add the scheme: http://127.0.0.1:8000"),
        ("localhost:8000/v1", "add the scheme"),
        ("ftp://127.0.0.1/v1", "bench speaks HTTP"),
        ("http://:8000/v1", "not an http(s) URL"),
        ("http://127.0.0.1:99999/v1", "not an http(s) URL"),
    ],
)
def test_a_target_that_is_not_an_http_url_is_exit_2(target: str, fragment: str) -> None:
    res = bench("--target", target, "--num-prompts", "1")
    assert res.exit_code == 2, res.output
    assert fragment in res.stderr and "internal error" not in res.stderr


def test_node_with_target_is_an_error(fake_server) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    res = bench("--target", base, "--node", "local-cpu", "--num-prompts", "1")
    assert res.exit_code == 2 and "--node" in res.stderr and "nothing is served" in res.stderr


@pytest.fixture
def closing_port() -> Iterator[int]:
    """A port that accepts every connection and closes it at once, without a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    srv.close()
    thread.join(5)


def test_a_port_that_closes_at_once_is_disconnected_not_a_timeout(closing_port: int) -> None:
    target = f"http://127.0.0.1:{closing_port}/v1"
    started = time.monotonic()
    res = bench(
        "--target", target, "--model", "m", "--warmup", "0", "--num-prompts", "6", "--timeout", "60", "--json"
    )
    elapsed = time.monotonic() - started
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["errors"] == {"disconnected": 6}
    assert elapsed < 20  # each request used to wait out its 60 s timeout
    started = time.monotonic()
    warm = bench("--target", target, "--model", "m", "--num-prompts", "2", "--timeout", "60")
    assert warm.exit_code == 1 and "warmup" in warm.stderr and "disconnected" in warm.stderr
    assert time.monotonic() - started < 20


def test_dry_run_is_the_one_shape_with_env_between_flags_and_workspace(fake_server, monkeypatch) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    Path("llmops.yaml").write_text(f"bench:\n  target: {base}\n  num_prompts: 7\n  max_concurrency: 2\n")
    monkeypatch.setenv("LLMOPS_BENCH_NUM_PROMPTS", "9")
    monkeypatch.setenv("LLMOPS_BENCH_SLOS", '{"ttft_p99_ms": 400}')
    res = bench("--max-concurrency", "3", "--slo", "error_rate=0.01", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == "bench" and doc["serve_first"] is False
    s = doc["settings"]
    assert all(set(v) == {"value", "origin"} for v in s.values())
    assert s["target"] == {"value": base, "origin": "workspace"}
    assert s["num_prompts"] == {"value": 9, "origin": "env"}
    assert s["max_concurrency"] == {"value": 3, "origin": "flag"}
    assert s["slos"] == {"value": {"ttft_p99_ms": 400, "error_rate": 0.01}, "origin": "flag"}
    assert s["timeout_s"] == {"value": 300.0, "origin": "default"}
    assert requests_seen(base) == 0
    monkeypatch.setenv("LLMOPS_BENCH_NUM_PROMPTS", "many")
    bad = bench("--dry-run", "--json")
    assert bad.exit_code == 2 and "LLMOPS_BENCH_NUM_PROMPTS" in bad.stderr


def test_outputs_are_checked_before_the_run(fake_server, tmp_path: Path) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=4)
    res = bench("--target", base, "--num-prompts", "2", "-o", str(tmp_path / "missing" / "r.json"))
    assert res.exit_code == 2 and "does not exist" in res.stderr
    same = tmp_path / "r.json"
    res = bench("--target", base, "--num-prompts", "2", "-o", str(same), "--html", str(same))
    assert res.exit_code == 2 and "both name" in res.stderr
    assert requests_seen(base) == 0
