"""How many requests per second the local batch runner sustains against a server that answers instantly.

The server (a separate process, asyncio, keep-alive) answers every chat completion at once, so the figure
is llmops's own overhead: HTTP client, retries/rate-limit bookkeeping, and the journal (SQLite, WAL,
synchronous=FULL, written in group commits by one thread: what makes kill -9 resumable exactly-once).
Three figures: the runner alone, the runner with the journal, and the whole `llmops batch submit --wait`
command as a process (validation, job store, journal, results file; start-up included).

    PYTHONPATH=. python benchmarks/bench_batch_local.py --requests 5000 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = r"""
import asyncio, json, sys
BODY = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "instant",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode()
        + b"\r\n\r\n")
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            writer.write(HEAD + BODY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the instant server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_port(port)
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["LLMOPS_DATA_DIR"] = str(Path(tmp) / "data")
            from llmops.batch.journal import Journal
            from llmops.batch.runner import Runner, RunnerConfig
            from llmops.batch.store import JobStore
            from llmops.prompts import RequestLine

            base = f"http://127.0.0.1:{port}/v1"
            requests = [
                (
                    i,
                    RequestLine(
                        custom_id=f"r{i}",
                        method="POST",
                        url="/v1/chat/completions",
                        body={
                            "model": "instant",
                            "max_tokens": 1,
                            "messages": [{"role": "user", "content": f"p{i}"}],
                        },
                    ),
                )
                for i in range(args.requests)
            ]

            done: list[int] = []
            runner = Runner(
                RunnerConfig(base_url=base, concurrency=args.concurrency),
                on_done=lambda seq, line: done.append(seq),
            )
            t0 = time.perf_counter()
            runner.run(requests, total=len(requests))
            bare = len(requests) / (time.perf_counter() - t0)
            assert runner.ok == len(requests)

            # the runner with the journal: every result committed (group commits, fsync'd)
            store = JobStore(Path(tmp) / "store")
            journal = Journal(store.path, "bench")
            runner = Runner(RunnerConfig(base_url=base, concurrency=args.concurrency), on_done=journal.add)
            t0 = time.perf_counter()
            runner.run(requests, total=len(requests))
            journal.close()
            journaled = len(requests) / (time.perf_counter() - t0)
            assert store.journal_counts("bench", len(requests)).succeeded == len(requests)

            # the whole command path: validation, job store, journal, results file
            path = Path(tmp) / "in.jsonl"
            path.write_text("".join(json.dumps(r.model_dump()) + "\n" for _, r in requests))
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "llmops",
                    "batch",
                    "submit",
                    str(path),
                    "--base-url",
                    base,
                    "--model",
                    "instant",
                    "--concurrency",
                    str(args.concurrency),
                    "--wait",
                    "--json",
                ],
                capture_output=True,
                text=True,
                env=os.environ,
            )
            full_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            assert json.loads(proc.stdout)["counts"]["succeeded"] == len(requests)
    finally:
        server.terminate()
        server.wait()

    print(
        f"requests: {args.requests}, concurrency: {args.concurrency}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"runner alone (no journal):                    {bare:8.0f} requests/s")
    print(
        f"runner + journal (group commits):             {journaled:8.0f} requests/s "
        f"({journal.commits} commits, {args.requests / max(1, journal.commits):.0f} results each)"
    )
    print(
        f"llmops batch submit --wait (journal, process): {args.requests / full_s:8.0f} requests/s "
        f"({full_s:.2f} s including start-up)"
    )


if __name__ == "__main__":
    main()
