"""What the gateway's cache and guard cost, and how right they are (issue 13).

    PYTHONPATH=. python benchmarks/bench_gateway_cache.py [--quick]

Prints, in order:
  1. the semantic layer on the labelled pairs (tests/data): paraphrase hits and wrong hits on near
     misses, by threshold, with the threshold alone and with the second check;
  2. the guard on its labelled sets: detection by disguise, false positives on benign prompts, the
     leak rules against the seed's word list on ordinary replies;
  3. the embedding (all-MiniLM-L6-v2, int8 ONNX on onnxruntime, one thread) and the search: memory
     index, and Redis (this process's copy brought up to date per lookup vs fetching every row);
  4. through the real gateway (uvicorn in this process, pinned to CPU 0; the load generator in another
     process on CPU 1; a local upstream that answers at once): the time the gateway spends on a request
     (from `Gateway.handle` in to the reply out) for an exact hit at concurrency 64, and for a
     semantic miss and a semantic hit at concurrency 1 and 8 — with the cache stage's own share;
  5. the resident memory of `llmops gateway` with a semantic route: idle, after stored misses, and
     after long conversations arriving eight at a time (the largest activations).

Goals: exact hit <= 1 ms p50 at c=64; a semantic miss adds <= 10 ms p50; a semantic hit < 15 ms p50;
no wrong hit at the default threshold; the gateway under 200 MB resident (issue 12) with the semantic layer. The machine is small and shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gateway_cache.labelled import SETS, embed_pairs, read_jsonl, tally, turns  # noqa: E402

LOADGEN = r"""
import asyncio, json, sys, time
import aiohttp
url, bodies_path, concurrency, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bodies = json.load(open(bodies_path))
async def main():
    lat, heads = [], {}
    queue = [b for _ in range(repeat) for b in bodies]
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def worker():
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                async with s.post(url, json=body) as r:
                    await r.read()
                    h = r.headers.get("x-llmops-cache", "-")
                lat.append(time.perf_counter() - t)
                heads[h] = heads.get(h, 0) + 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    print(json.dumps({"latency": lat, "headers": heads, "wall": wall}))
asyncio.run(main())
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:6.2f} ms  p99 {pct(values, 0.99) * 1000:6.2f} ms  (n={len(values)})"


# --- 1. the semantic layer on the labelled pairs ------------------------------------------------------


THRESHOLDS = (0.95, 0.92, 0.90, 0.88, 0.85, 0.80)


def semantic_accuracy(embedder: Any) -> None:
    """Hits and wrong hits per threshold on every labelled set, deciding as the cache stage does: the
    joined conversations' similarity, the text rules, then every turn on its own embedding."""
    from llmops.gateway.cache.config import DEFAULT_THRESHOLD

    print("\n1. semantic layer on the labelled pairs (all-MiniLM-L6-v2 int8 ONNX)")
    every = []
    for name in SETS:
        pairs = embed_pairs(embedder, read_jsonl(name))
        every += pairs
        t = tally(pairs, 1.0)
        print(f"  {name}: {t['paraphrases']} paraphrase pairs, {t['near_misses']} near-miss pairs")
        print(
            "    threshold | threshold alone: hits / wrong | + text rules: hits / wrong "
            "| + turn by turn (the stage): hits / wrong"
        )
        for th in THRESHOLDS:
            cols = [tally(pairs, th, v, b) for v, b in ((False, False), (True, False), (True, True))]
            print(
                f"    {th:9.2f} | "
                + " | ".join(
                    f"{c['hits']:3d}/{c['paraphrases']} {c['wrong']:3d}/{c['near_misses']}" for c in cols
                )
            )
        for c in tally(pairs, min(THRESHOLDS))["wrong_texts"]:
            print(f"    wrong at {min(THRESHOLDS)}: {c}")
    print(f"  all sets together (the stage's decision), default {DEFAULT_THRESHOLD}:")
    print("    threshold | paraphrase hits | wrong hits")
    for th in THRESHOLDS:
        t = tally(every, th)
        share = t["hits"] / t["paraphrases"]
        print(
            f"    {th:9.2f} | {t['hits']:3d}/{t['paraphrases']} ({share:.0%}) | {t['wrong']}/{t['near_misses']}"
        )


# --- 2. the guard on its labelled sets -----------------------------------------------------------------


def guard_accuracy() -> None:
    from llmops.gateway.guard.rules import SEED_LEAK_WORDS
    from llmops.gateway.guard.screen import Screen

    screen = Screen()
    print("\n2. guard (pattern rules) on the labelled sets")
    attacks = read_jsonl("guard_injections.jsonl")
    by: dict[str, list[int]] = {}
    for r in attacks:
        v = by.setdefault(r["variant"], [0, 0])
        v[0] += 1
        v[1] += bool(screen.check_text(r["text"]))
    seen = [r for r in attacks if r["variant"] != "rephrased"]
    caught = sum(bool(screen.check_text(r["text"])) for r in seen)
    print(f"  seed examples and disguises: {caught}/{len(seen)} detected")
    print("   ", ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in by.items() if k != "rephrased"))
    reph = by.get("rephrased", [0, 0])
    print(f"  rephrased attacks the patterns were not written for: {reph[1]}/{reph[0]} detected")
    benign = read_jsonl("guard_benign.jsonl")
    fp = [r["text"] for r in benign if r["kind"] == "benign" and screen.check_text(r["text"])]
    quoted = [r for r in benign if r["kind"] == "quotes_attack"]
    print(
        f"  benign prompts mentioning instructions / system prompts: {len(fp)}/{sum(r['kind'] == 'benign' for r in benign)} flagged"
    )
    print(
        f"  benign prompts quoting an attack phrase: {sum(bool(screen.check_text(r['text'])) for r in quoted)}/{len(quoted)} flagged"
    )
    leaks = read_jsonl("guard_leaks.jsonl")
    lk = [r for r in leaks if r["kind"] == "leak"]
    ok = [r for r in leaks if r["kind"] == "benign"]
    print(f"  leak rules: {sum(bool(screen.check_reply_text(r['text'])) for r in lk)}/{len(lk)} leaks caught, "
          f"{sum(bool(screen.check_reply_text(r['text'])) for r in ok)}/{len(ok)} ordinary replies flagged; "
          f"the seed's word list flags {sum(bool(SEED_LEAK_WORDS.search(r['text'])) for r in ok)}/{len(ok)} ordinary replies")  # fmt: skip
    texts = [r["text"] for r in benign] * 20
    t0 = time.perf_counter()
    for t in texts:
        screen.check_text(t)
    print(f"  request screening cost: {(time.perf_counter() - t0) / len(texts) * 1e6:.0f} us per prompt")


# --- 3. embedding and search ---------------------------------------------------------------------------


def embedding_and_search(embedder: Any, redis_url: str | None, quick: bool) -> None:
    import numpy as np

    from llmops.gateway.cache.index import VectorIndex
    from llmops.gateway.cache.sameness import conversation_difference

    print("\n3. embedding (one thread) and search")
    texts = {
        "short (~10 tokens)": "What is the capital of France?",
        "medium (~30 tokens)": "I'm planning a trip to Italy.\nGreat! How can I help?\nWhat should I pack for Rome in July?",
        "long (~120 tokens)": "Summarise the following paragraph for a ten year old. " * 12,
    }
    reps = 30 if quick else 100
    for name, text in texts.items():
        embedder.embed_sync([text])
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            embedder.embed_sync([text])
            ts.append(time.perf_counter() - t0)
        print(f"  embed {name:20s} {ms(ts)}")
    t0 = time.perf_counter()
    for _ in range(1000):
        conversation_difference(["Convert 5 km to miles, please."], ["Convert 5 miles to km, please."])
    print(
        f"  second check: {(time.perf_counter() - t0) * 1000:.3f} ms per 1000 comparisons (cached features)"
    )
    rng = np.random.default_rng(0)
    for n in (1_000, 10_000):
        idx = VectorIndex()
        m = rng.standard_normal((n, 384)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        for i in range(n):
            idx.add(f"k{i}", m[i], ("t",), time.time() + 3600)
        q = m[7]
        ts = []
        for _ in range(200):
            t0 = time.perf_counter()
            idx.search(q, 0.95)
            ts.append(time.perf_counter() - t0)
        print(f"  memory index search, {n:6d} rows: {ms(ts)}")
    if redis_url:
        asyncio.run(_redis_search(redis_url, rng, m[:1000]))


async def _redis_search(url: str, rng: Any, vectors: Any) -> None:
    import numpy as np

    from llmops.gateway.cache.redis_store import RedisCacheStore
    from llmops.gateway.cache.store import Entry, Row

    store = RedisCacheStore(url, prefix="bench:cache")
    await store.clear()
    for i, v in enumerate(vectors):
        await store.put("chat", f"k{i}", Entry({"x": 1}), 600, Row("p", v, ("t",), 600))
    await store.nearest("chat", "p", vectors[0], 0.95)  # first lookup reads the whole stream once
    ts = []
    for _ in range(200):
        t0 = time.perf_counter()
        await store.nearest("chat", "p", vectors[3], 0.95)
        ts.append(time.perf_counter() - t0)
    print(f"  redis, 1000 rows, local copy + XRANGE of new rows: {ms(ts)}")
    full = []
    for _ in range(20):
        t0 = time.perf_counter()
        rows = await store.redis.xrange("bench:cache:chat:s:p")
        m = np.stack([np.frombuffer(f[b"v"], dtype=np.float32) for _, f in rows])
        _ = m @ vectors[3]
        full.append(time.perf_counter() - t0)
    print(f"  redis, 1000 rows, fetching every row per lookup:  {ms(full)}")
    await store.clear()
    await store.close()


# --- 4. through the gateway ----------------------------------------------------------------------------


class Timings:
    def __init__(self) -> None:
        self.handle: dict[str, list[float]] = {}
        self.stage: list[float] = []

    def wrap_handle(self, fn: Callable) -> Callable:
        async def timed(api: Any, raw: bytes, headers: Any, send: Any, exch: Any) -> Any:
            t0 = time.perf_counter()
            sent: dict[str, str] = {}
            real = exch.send

            async def spy(msg: dict[str, Any]) -> None:
                if msg["type"] == "http.response.start":
                    for k, v in msg.get("headers", []):
                        if k == b"x-llmops-cache":
                            sent["cache"] = v.decode()
                await real(msg)

            exch.send = spy
            try:
                return await fn(api, raw, headers, spy, exch)
            finally:
                self.handle.setdefault(sent.get("cache", "-"), []).append(time.perf_counter() - t0)

        return timed

    def wrap_stage(self, fn: Callable) -> Callable:
        async def timed(call: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(call)
            finally:
                self.stage.append(time.perf_counter() - t0)

        return timed


def loadgen(url: str, bodies: list[dict], concurrency: int, repeat: int, tmp: Path) -> dict:
    path = tmp / f"bodies-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(bodies))
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 else []
    out = subprocess.run([*pin, sys.executable, "-c", LOADGEN, url, str(path), str(concurrency), str(repeat)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


def through_gateway(tmp: Path, quick: bool) -> None:
    import uvicorn

    from llmops.bench.fake_server import spawn
    from llmops.gateway.app import create_app
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.pipeline import Gateway
    from llmops.gateway.table import build_table

    print("\n4. through the gateway (time inside the gateway per request; upstream answers at once)")
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    proc, base = spawn(0, 0, tokens=8)
    try:
        section = GatewaySection.model_validate({
            "routes": [
                {"name": "exact", "deployments": [{"url": base + "/v1", "model": "m"}], "cache": {"exact": True}},
                {"name": "sem", "deployments": [{"url": base + "/v1", "model": "m"}],
                 "cache": {"exact": True, "semantic": {"threshold": 0.95}}},
            ],
            "usage_log": str(tmp / "usage.jsonl"),
        })  # fmt: skip
        gw = Gateway(section, build_table(section, None), usage_path=tmp / "usage.jsonl")
        timings = Timings()
        gw.handle = timings.wrap_handle(gw.handle)  # type: ignore[method-assign]
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(gw), host="127.0.0.1", port=port, loop="uvloop",
                                               http="httptools", lifespan="on", access_log=False, log_level="warning"))  # fmt: skip
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        gw.cache.on_request = timings.wrap_stage(gw.cache.on_request)  # type: ignore[method-assign]
        url = f"http://127.0.0.1:{port}/v1/chat/completions"

        def ask(route: str, text: str, i: int = 0) -> dict:
            return {"model": route, "temperature": 0, "max_tokens": 8,
                    "messages": [{"role": "system", "content": f"s{i}"}, {"role": "user", "content": text}]}  # fmt: skip

        # exact hits at concurrency 64
        warm = [ask("exact", f"question number {i}") for i in range(64)]
        loadgen(url, warm, 8, 1, tmp)
        timings.handle.clear()
        timings.stage.clear()
        r = loadgen(url, warm, 64, 20 if quick else 60, tmp)
        print(
            f"  exact hit, c=64: in gateway {ms(timings.handle.get('hit', []))}; cache stage {ms(timings.stage)}"
        )
        print(
            f"    client side: {ms(r['latency'])}, {len(r['latency']) / r['wall']:.0f} req/s, headers {r['headers']}"
        )
        questions = [r["a"] for r in read_jsonl("semantic_pairs.jsonl") if r["kind"] == "paraphrase"]
        paraphrases = [r["b"] for r in read_jsonl("semantic_pairs.jsonl") if r["kind"] == "paraphrase"]
        for c in (1, 8):
            timings.handle.clear()
            timings.stage.clear()
            stored = [ask("sem", turns(q)[-1], 1000 * c + i) for i, q in enumerate(questions) if len(q) == 1]
            loadgen(url, stored, c, 1, tmp)
            miss_stage = list(timings.stage)
            miss_total = list(timings.handle.get("miss", []))
            timings.handle.clear()
            timings.stage.clear()
            similar = [
                ask("sem", turns(p)[-1], 1000 * c + i) for i, p in enumerate(paraphrases) if len(p) == 1
            ]
            r = loadgen(url, similar, c, 1, tmp)
            print(f"  semantic, c={c}: a miss adds (cache stage: embed + search) {ms(miss_stage)}")
            print(f"    miss, in gateway (upstream included) {ms(miss_total)}")
            print(
                f"    semantic hit, in gateway {ms(timings.handle.get('semantic-hit', []))}; headers {r['headers']}"
            )
        server.should_exit = True
        thread.join(10)
    finally:
        proc.kill()


# --- 5. memory --------------------------------------------------------------------------------------


def memory(tmp: Path, quick: bool) -> None:
    """`llmops gateway` as users run it, with a semantic route: resident memory idle and under load."""
    import concurrent.futures

    import httpx
    import yaml

    from llmops.bench.fake_server import spawn

    def rss_mb(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    print("\n5. memory: `llmops gateway` (one process) with the exact and semantic layers on a route")
    proc, base = spawn(0, 0, tokens=8)
    port = _free_port()
    cfg = tmp / "memory.yaml"
    route = {"name": "sem", "deployments": [{"url": base + "/v1", "model": "m"}],
             "cache": {"exact": True, "semantic": {"threshold": 0.95}}}  # fmt: skip
    cfg.write_text(yaml.safe_dump({"gateway": {"routes": [route], "usage_log": str(tmp / "memory.jsonl")}}))
    argv = [sys.executable, "-m", "llmops", "--config", str(cfg), "gateway", "--port", str(port), "--json"]
    gw = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        assert gw.stdout is not None
        while '"url"' not in gw.stdout.readline():
            pass
        with httpx.Client(timeout=120) as c:
            c.post(
                url, json={"model": "sem", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}
            )
            time.sleep(1)
            print(f"  idle, model loaded: {rss_mb(gw.pid):.1f} MB")
            n = 100 if quick else 300
            for i in range(n):
                text = f"What is the capital of country number {i}? " * (1 + i % 5)
                c.post(
                    url,
                    json={"model": "sem", "temperature": 0, "messages": [{"role": "user", "content": text}]},
                )
            print(f"  after {n} semantic misses (entries stored): {rss_mb(gw.pid):.1f} MB")

        def conversation(i: int) -> int:
            turns = [{"role": "user" if j % 2 == 0 else "assistant",
                      "content": f"Turn {j} of conversation {i}: tell me more about Roman roads and trade. " * 3}
                     for j in range(7)]  # fmt: skip
            body = {"model": "sem", "temperature": 0, "max_tokens": 8, "messages": turns}
            return httpx.post(url, json=body, timeout=120).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(conversation, range(80 if quick else 240)))
        print(f"  after {len(codes)} long conversations (~250 tokens) at concurrency 8: {rss_mb(gw.pid):.1f} MB"
              f" (statuses {sorted(set(codes))})")  # fmt: skip
        hwm = next(
            ln for ln in Path(f"/proc/{gw.pid}/status").read_text().splitlines() if ln.startswith("VmHWM")
        )
        print(
            f"  peak while the model was being loaded ({hwm.split()[0]}): {int(hwm.split()[1]) / 1024:.1f} MB"
        )
    finally:
        gw.terminate()
        gw.wait(15)
        proc.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis() -> tuple[subprocess.Popen | None, str | None]:
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        return None, None
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--only", choices=["accuracy"], help="accuracy: only part 1, the hits and wrong hits per threshold"
    )
    args = parser.parse_args()
    from llmops.gateway.cache.embed import Embedder

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine)")
    embedder = Embedder()
    embedder.load()
    semantic_accuracy(embedder)
    if args.only == "accuracy":
        return
    guard_accuracy()
    redis_proc, redis_url = _redis()
    try:
        embedding_and_search(embedder, redis_url, args.quick)
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(5)
    with tempfile.TemporaryDirectory() as tmp:
        through_gateway(Path(tmp), args.quick)
        memory(Path(tmp), args.quick)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
