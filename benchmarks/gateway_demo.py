"""Demo: serve SmolLM2, put `llmops gateway` in front of it, one request through it with the openai SDK.

Prints the reply, the gateway's headers (route, deployment, overhead) and the /metrics lines for it.
Run: python benchmarks/gateway_demo.py [--serve-port 8000] [--port 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _wait_json(proc: subprocess.Popen, what: str) -> dict:
    """The JSON document a `--json` llmops command prints once it is ready."""
    assert proc.stdout is not None
    text = ""
    while not text.rstrip().endswith("}"):
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"{what} exited with status {proc.wait()} before it was ready")
        text += line
    return json.loads(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-port", type=int, default=8000)
    parser.add_argument("--port", type=int, default=4000)
    args = parser.parse_args()
    llmops = [sys.executable, "-m", "llmops"]
    procs: list[subprocess.Popen] = []
    try:
        server = subprocess.Popen(
            [*llmops, "serve", "smollm2", "--port", str(args.serve_port), "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(server)
        endpoint = _wait_json(server, "llmops serve")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "llmops.yaml"
            cfg.write_text(
                "gateway:\n"
                "  keys: [{name: demo, key_env: DEMO_GATEWAY_KEY, rpm: 60}]\n"
                f"  usage_log: {tmp}/usage.jsonl\n"
                "  routes:\n"
                "    - name: chat\n"
                f"      deployments: [{{url: {endpoint['base_url']}, model: {endpoint['model']}, name: smollm2-local}}]\n"
            )
            env = {**os.environ, "DEMO_GATEWAY_KEY": "sk-demo"}
            gateway = subprocess.Popen(
                [*llmops, "--config", str(cfg), "gateway", "--port", str(args.port), "--json"],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append(gateway)
            url = _wait_json(gateway, "llmops gateway")["url"]
            print(f"gateway: {url}/v1 in front of {endpoint['base_url']} ({endpoint['model']})")

            from openai import APIError, OpenAI

            client = OpenAI(base_url=f"{url}/v1", api_key="sk-demo", max_retries=0)
            t0 = time.monotonic()
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="chat",
                    max_tokens=32,
                    temperature=0.2,
                    messages=[{"role": "user", "content": "In one sentence, what is a gateway?"}],
                )
            except APIError as exc:
                from serve_demo import request_failed

                return request_failed(exc, server)
            reply = raw.parse()
            print(
                f"reply ({(time.monotonic() - t0) * 1000:.0f} ms): {reply.choices[0].message.content.strip()}"
            )
            for h in ("x-llmops-route", "x-llmops-deployment", "x-llmops-overhead-ms"):
                print(f"{h}: {raw.headers.get(h)}")
            import httpx

            metrics = httpx.get(f"{url}/metrics", timeout=5).text
            for line in metrics.splitlines():
                if line.startswith(("llm_requests_total", "llm_token_usage_total")):
                    print(line)
            _stop(procs)
            return 0
    finally:
        _stop(procs)


def _stop(procs: list[subprocess.Popen]) -> None:
    """Ctrl-C each: the gateway drains and stops, serve stops the engine."""
    while procs:
        p = procs.pop()
        if p.poll() is None:
            p.send_signal(2)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    raise SystemExit(main())
