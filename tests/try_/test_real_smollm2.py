"""`llmops try` against the real SmolLM2 on llama.cpp (slow: a real model on the CPU; answers kept short)."""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from llmops.cli import app

pytestmark = pytest.mark.slow
PROMPT = "Name three colours."


def try_json(server: str, *args: str) -> dict:
    res = CliRunner().invoke(app, ["try", "smollm2", PROMPT, "--target", server, *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_try_serves_smollm2_for_the_duration_and_prints_the_status_line() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "llmops", "try", "smollm2", PROMPT, "--max-tokens", "8"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()  # the answer
    status = res.stderr.strip().splitlines()[-1]
    assert "TTFT" in status and "tok/s" in status and "finish: length (hit max_tokens 8)" in status
    assert "out 8" in status


def test_compare_temperature_0_repeats_exactly(smollm2_server: str) -> None:
    doc = try_json(smollm2_server, "--max-tokens", "8", "--compare", "temperature=0,1.2", "--repeat", "3")
    at0, at12 = doc["runs"]
    assert [r["label"] for r in doc["runs"]] == ["temperature=0", "temperature=1.2"]
    texts0 = [a["text"] for a in at0["answers"]]
    assert len(texts0) == 3 and texts0[0] and len(set(texts0)) == 1
    assert at0["diversity"]["identical"] is True
    assert len(at12["answers"]) == 3 and all(a["error"] is None for a in at12["answers"])
    assert at12["diversity"]["distinct_answers"] >= 1


def test_logprobs_3_gives_probabilities_alternatives_and_a_confidence(smollm2_server: str) -> None:
    doc = try_json(smollm2_server, "--max-tokens", "8", "--temperature", "0", "--logprobs", "3")
    assert doc["runs"][0]["request"]["logprobs"] is True and doc["runs"][0]["request"]["top_logprobs"] == 3
    a = doc["runs"][0]["answers"][0]
    assert a["logprobs_returned"] is True and len(a["tokens"]) == 8 and a["output_tokens_from"] == "logprobs"
    assert "".join(t["token"] for t in a["tokens"]) == a["text"]
    for t in a["tokens"]:
        # llama.cpp adds the chosen token to the alternatives when it is not among the top 3
        assert t["logprob"] <= 0 and 3 <= len(t["top"]) <= 4
    mean = sum(t["logprob"] for t in a["tokens"]) / 8
    assert a["confidence"] == pytest.approx(math.exp(mean), abs=1e-4)
    assert a["confidence_band"] in ("automatic", "check", "human review")


def test_sigint_cancels_promptly_keeps_the_partial_answer_and_the_server_keeps_serving(
    smollm2_server: str,
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmops",
            "try",
            "smollm2",
            "Write a long story about a cat.",
            "--target",
            smollm2_server,
            "--max-tokens",
            "400",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no answer text within 60 s"
        first = os.read(proc.stdout.fileno(), 4096)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rest, err = proc.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (first + rest).decode()
    assert proc.returncode == 130, err.decode()
    assert took < 3, f"exit took {took:.1f}s"
    assert len(text.split()) >= 2
    assert "cancelled" in err.decode() and "interrupted" in err.decode()
    # The server stopped generating for the cancelled request and answers the next one at once.
    t0 = time.monotonic()
    r = httpx.post(
        smollm2_server + "/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    assert time.monotonic() - t0 < 5  # 400 tokens left generating would take far longer on this CPU
