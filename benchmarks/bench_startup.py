"""How long `llmops --help` and `llmops profiles list` take, and which heavy modules they import.

Target: `llmops --help` under 0.3 s on a 2-core machine. Run: `make bench-startup`
or `.venv/bin/python benchmarks/bench_startup.py [--runs 10]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "vllm", "tensorrt", "llama_cpp", "openai", "anthropic", "onnxruntime")
TARGET_S = 0.3


def llmops_cmd() -> list[str]:
    script = Path(sys.executable).with_name("llmops")
    return [str(script)] if script.exists() else [shutil.which("llmops") or "llmops"]


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def heavy_imports(args: list[str]) -> list[str]:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "llmops", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    mods = {line.split("|")[-1].strip().split(".")[0] for line in res.stderr.splitlines() if "|" in line}
    return sorted(m for m in HEAVY if m in mods)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cmd = llmops_cmd()
    # Measure what an installed user runs: `pip install` of a wheel writes llmops's bytecode, an editable
    # install does not, and with PYTHONDONTWRITEBYTECODE set (as on this machine) every run would compile
    # the command modules again (30-80 ms of --help measured here).
    import compileall

    import llmops

    compileall.compile_dir(str(Path(llmops.__file__).parent), quiet=1)
    worst = 0.0
    for label, extra in (("llmops --help", ["--help"]), ("llmops profiles list", ["profiles", "list"])):
        times = time_command([*cmd, *extra], args.runs)
        median = statistics.median(times)
        worst = max(worst, median) if extra == ["--help"] else worst
        print(
            f"{label:24s} median {median * 1000:6.0f} ms  min {min(times) * 1000:6.0f} ms  "
            f"max {max(times) * 1000:6.0f} ms  ({args.runs} runs)  heavy imports: {heavy_imports(extra) or 'none'}"
        )
    verdict = "OK" if worst < TARGET_S else "OVER TARGET"
    print(f"target: --help under {TARGET_S * 1000:.0f} ms -> {verdict}")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
