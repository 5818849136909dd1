"""Demo: `llmops serve smollm2` in the background, wait until ready, one chat request, then Ctrl-C (SIGINT).

Prints the figures it measures: time to ready, time for the chat request, time to stop, and the exit status.
Run: python benchmarks/serve_demo.py [--port 8000]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time


def request_failed(exc: Exception, server: subprocess.Popen) -> int:
    """One line instead of the SDK's traceback; `llmops serve` prints the engine's death report itself."""
    try:
        status = server.wait(5)  # serve notices a dead engine within a second and exits 1
    except subprocess.TimeoutExpired:
        status = None
    why = (
        f"llmops serve exited with status {status} (its report is above)"
        if status is not None
        else "llmops serve is still running"
    )
    print(f"demo failed: the chat request got {type(exc).__name__}: {exc}; {why}", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()

    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "llmops", "serve", args.model, "--port", str(args.port), "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        text = ""
        while not text.rstrip().endswith("}"):  # one JSON document once the endpoint is ready
            line = server.stdout.readline()
            if not line:
                print(f"llmops serve exited with status {server.wait()} before it was ready", file=sys.stderr)
                return 1
            text += line
        endpoint = json.loads(text)
        ready_s = time.monotonic() - started
        print(f"ready: {endpoint['base_url']} model={endpoint['model']} in {ready_s:.1f} s (start -> ready)")

        from openai import APIError, OpenAI

        client = OpenAI(base_url=endpoint["base_url"], api_key="unused", max_retries=0)
        t0 = time.monotonic()
        try:
            reply = client.chat.completions.create(
                model=endpoint["model"],
                max_tokens=48,
                temperature=0.2,
                messages=[{"role": "user", "content": "In one sentence, what is a GPU?"}],
            )
        except APIError as exc:
            return request_failed(exc, server)
        chat_s = time.monotonic() - t0
        print(
            f"chat: {reply.usage.completion_tokens} tokens in {chat_s:.2f} s: "
            f"{reply.choices[0].message.content.strip()!r}"
        )
    finally:
        t0 = time.monotonic()
        if server.poll() is None:  # else it ended by itself, and said why
            server.send_signal(signal.SIGINT)
            status = server.wait(60)
            print(
                f"stopped in {time.monotonic() - t0:.1f} s (llmops exit status {status}: the engine's own)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
