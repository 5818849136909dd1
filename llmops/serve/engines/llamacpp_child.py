"""llama.cpp in a child process: the CPU self-check's probe, and the server with the CPU paths chosen.

Run by path with `python -P` (it imports only the standard library and llama_cpp, never llmops):
- `probe MODEL {on|off} [PROMPT_TOKENS] [DECODE_TOKENS]`: evaluate a multi-token prompt, decode a few
  tokens, print one JSON line {"prompt_tokens", "decode_tokens", "prefill_tps", "decode_tps"}. A kernel
  that crashes on this CPU (AMX; some AVX-512 paths under hypervisors) kills this process, not llmops.
- `serve {on|off} ARGS...`: llama-cpp-python's OpenAI server (`python -m llama_cpp.server ARGS`) with
  the same choice. `off` loads models with llama.cpp's extra buffer types turned off (no AMX, no
  repacked weights); `on` is llama.cpp's default. faulthandler is on, so a crash leaves the Python stack
  in the engine's log.

$LLMOPS_SELFCHECK_CRASH makes it die on purpose, for tests on CPUs whose kernels do not crash: `on`
kills the probe with SIGSEGV when the extra buffer types are on, `all` in both modes.
Imports only the standard library and llama_cpp: it runs by path, outside llmops's package.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time


def use_extra_buffer_types(enabled: bool) -> None:
    """llama-cpp-python exposes no flag for it: patch the default model parameters it starts from."""
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params

    def patched():  # type: ignore[no-untyped-def]
        params = default()
        params.use_extra_bufts = enabled
        return params

    lib.llama_model_default_params = patched


def serve(mode: str, args: list[str]) -> int:
    use_extra_buffer_types(mode == "on")
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = ["llama_cpp.server", *args]
    server_main()
    return 0


def probe(argv: list[str]) -> int:
    model, mode = argv[0], argv[1]
    prompt_tokens = int(argv[2]) if len(argv) > 2 else 24
    decode_tokens = int(argv[3]) if len(argv) > 3 else 4
    extra = mode == "on"
    use_extra_buffer_types(extra)
    import llama_cpp

    n_ctx = max(256, prompt_tokens + decode_tokens + 8)
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
    crash = os.environ.get("LLMOPS_SELFCHECK_CRASH", "")
    if crash == "all" or (crash == "on" and extra):
        os.kill(os.getpid(), signal.SIGSEGV)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "a",
        "model",
        "counts",
        "every",
        "token",
        "it",
        "reads",
    ]
    tokens: list[int] = []
    i = 0
    while len(tokens) < prompt_tokens:
        tokens = llm.tokenize(" ".join(words[j % len(words)] for j in range(i + 1)).encode(), add_bos=True)
        i += 1
    tokens = tokens[:prompt_tokens]
    t0 = time.perf_counter()
    llm.eval(tokens)  # prefill: one batch of many tokens, the path that crashed on AMX
    t1 = time.perf_counter()
    for _ in range(decode_tokens):
        token = llm.sample(temp=0.0)
        llm.eval([token])
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "prompt_tokens": len(tokens),
                "decode_tokens": decode_tokens,
                "prefill_tps": len(tokens) / (t1 - t0),
                "decode_tps": decode_tokens / (t2 - t1) if decode_tokens else None,
            }
        ),
        flush=True,
    )
    return 0


def main(argv: list[str]) -> int:
    faulthandler.enable()
    if argv[:1] == ["serve"]:
        return serve(argv[1], argv[2:])
    return probe(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
