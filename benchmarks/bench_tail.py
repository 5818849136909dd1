"""The gateway's tail: TTFT it adds at p50/p99 at concurrency 1, 16 and 64, and its event-loop lag.

Harness of issue 23: the gateway (`llmops gateway`, keys + RPM/TPM/budget limits, metrics and usage log on)
pinned to CPU 0; a streaming server (llmops.bench.fake_server, 20 ms to the first token, 5 ms between
tokens, 32 tokens) and llmops's bench client share CPU 1. At each concurrency, rounds alternate: direct to
the server, then through each gateway; added TTFT = percentile through the gateway - the same percentile
direct, over all rounds pooled. Loop lag comes from the gateway's own histogram
(`llmops_gateway_loop_lag_seconds`, scraped before and after its runs), as a bucket bound ("<= 2 ms").

  --baseline REF   also run the gateway as of git REF (exported to a temporary folder), alternating with
                   this tree's in every round: a before/after comparison under the same load.
  --attribute      instead, run this tree's gateway with LLMOPS_GATEWAY_LAG_TRACE at c=64 (and /metrics
                   scraped every second) and print what ran during each lag spike (gc, usage writes,
                   /metrics renders, upstream connections, requests); with --baseline (a ref that has
                   the trace), both trees, alternating.
  --quick          2 rounds, about 2 minutes with --baseline; the full run is 5 rounds of twice as many
                   requests per run (5x in all; about 9 minutes with --baseline).
  --steady S       instead of rounds: one continuous run of about S seconds per target at c=16 and c=64
                   (direct, the nginx control, each tree), p99 over the run and over its steady state (after
                   the first 10 waves: a closed-loop start sends c requests at once, and the waves take
                   about ten cycles to spread), p99 per tenth of the run, steal and loop lag per run.
                   `--steady 75 --baseline REF`: 10 minutes of load.
  --rounds N       that many rounds instead (6 full rounds with --baseline: about 10 minutes of load).
  --no-nginx       skip the control: nginx (if installed), one process on CPU 0 streaming unbuffered, run as
                   one more target each round; what it adds is the cost of any extra hop on the other CPU
                   of this machine, and the gateway's own part is what it adds beyond that.
  --no-wrk         skip the throughput check: after the TTFT rounds, wrk (if installed) drives 32-token
                   streams at c=64 through fresh gateways in front of an instant server, alternating
                   the trees each round, and their RSS (now and peak) is read after.

Every run's first `c` requests are sent at the same instant (a burst as deep as the concurrency); with few
requests per run they are a large share of the pool (5 % in --quick), so p99 is also given without them.

"steal" is the time the hypervisor kept each of this virtual machine's CPUs from running while it had work
(/proc/stat): the host's other tenants. It grows when both CPUs are busy (a run through the gateway) and
it stalls everything on that CPU at once; `--attribute` runs a bystander process on the gateway's CPU and
puts a lag spike down to the host when the bystander was as late over the same interval.

"gw CPU wait" is the share of the gateway's run time its loop was runnable but had no CPU (Linux
schedstat): another process had CPU 0. Figures from runs where it is more than a few percent measure the
machine, not the gateway.

Usage: python benchmarks/bench_tail.py [--quick] [--rounds N] [--steady S] [--baseline REF] [--attribute] [--no-wrk] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import CPUS, KEY, REPO, _free_port, _pin, rss_mb, run_ttfts, start_gateway

from llmops import steal
from llmops.bench.fake_server import spawn

LAG = "llmops_gateway_loop_lag_seconds_bucket"
# requests per run at each concurrency (quick); the full run sends 5x as many in 5 rounds
QUICK_N = {1: 30, 16: 320, 64: 1280}
SPIKE_S = 0.005  # a tick this late is a spike for --attribute


def lag_buckets(base_v1: str) -> dict[float, float] | None:
    """Cumulative counts of the loop-lag histogram by upper bound, or None (a gateway without it)."""
    url = base_v1.removesuffix("/v1") + "/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(LAG + "{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.rsplit(" ", 1)[1])
    return out or None


def lag_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, str]:
    """p50/p99/p99.9 and the highest bucket reached, from the histogram's change over a run."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    out: dict[str, str] = {"ticks": str(int(total))}

    def bound(b: float) -> str:
        return "> 5 s" if b == float("inf") else f"<= {b * 1000:g} ms"

    for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)):
        out[name] = next((bound(b) for b, c in zip(bounds, counts, strict=True) if c >= q * total), "-")
    prev = 0.0
    top = "-"
    for b, c in zip(bounds, counts, strict=True):
        if c > prev:
            top = bound(b)
        prev = c
    out["max"] = top
    return out


def run_delay(pid: int) -> float:
    """Seconds a process's main thread has waited for a CPU while runnable (Linux schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def steal_s() -> dict[int, float]:
    """Seconds the hypervisor has kept each CPU from running while it had work (/proc/stat 'steal')."""
    text, hz = Path("/proc/stat").read_bytes(), os.sysconf("SC_CLK_TCK")
    return {n: steal.parse(text, [n])[0] / hz for n in range(CPUS)}


def steal_ms_s(acc: list[float]) -> list[int]:
    """[CPU 0, CPU 1, seconds] stolen over runs -> ms stolen per second of run, per CPU."""
    cpu0, cpu1, secs = acc
    return [round(cpu0 / secs * 1000), round(cpu1 / secs * 1000)]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[int(q * (len(s) - 1))]


def export_tree(ref: str, dest: Path) -> Path:
    """The repository as of `ref`, as files (what a checkout of it would run)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def trees_of(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    """The source trees whose gateways run: --baseline's (exported), then this one."""
    trees = {"this tree": REPO}
    if args.baseline:
        trees = {args.baseline: export_tree(args.baseline, tmp / "baseline"), **trees}
    return trees


def start_hops(
    upstream_base: str, trees: dict[str, Path], tmp: Path, args: argparse.Namespace, procs: list
) -> dict[str, tuple[str, int]]:
    """A gateway per tree in front of `upstream_base`, then the nginx control (unless --no-nginx, or not
    installed): name -> (its base URL, ending in /v1; pid). Each process joins `procs` as it starts."""
    hops: dict[str, tuple[str, int]] = {}
    for i, (name, root) in enumerate(trees.items()):
        (tmp / f"gw{i}").mkdir(parents=True)
        proc, url = start_gateway(upstream_base + "/v1", tmp / f"gw{i}", root)
        procs.append(proc)
        hops[name] = (url, proc.pid)
    if not args.no_nginx and shutil.which("nginx"):
        proc, url = start_nginx(upstream_base, tmp / "nginx")
        procs.append(proc)
        hops[CONTROL] = (url + "/v1", proc.pid)
    return hops


def stolen_since(s0: dict[int, float], t0: float) -> list[float]:
    """[CPU 0, CPU 1, seconds]: steal of each CPU since `steal_s()` gave s0 at perf_counter t0."""
    s1, t1 = steal_s(), time.perf_counter()
    return [s1.get(0, 0.0) - s0.get(0, 0.0), s1.get(1, 0.0) - s0.get(1, 0.0), t1 - t0]


def ab(args: argparse.Namespace, tmp: Path) -> dict:
    server, server_base = spawn(20, 5, tokens=32)
    procs = [server]
    trees = trees_of(args, tmp)
    try:
        hops = start_hops(server_base, trees, tmp, args, procs)
        gateways = {name: url for name, (url, _pid) in hops.items()}
        pids = {name: pid for name, (_url, pid) in hops.items()}
        time.sleep(1)
        rounds = args.rounds or (2 if args.quick else 5)
        per_run = 1 if args.quick else 2
        rows = []
        runs: list[dict] = []  # each run on its own (--json): its percentiles beside the host's steal
        for c, n in QUICK_N.items():
            n *= per_run
            ttfts: dict[str, list[float]] = {"direct": [], **{g: [] for g in gateways}}
            later: dict[str, list[float]] = {t: [] for t in ttfts}  # without each run's first wave
            stolen: dict[str, list[float]] = {t: [0.0, 0.0, 0.0] for t in ttfts}  # CPU 0, CPU 1, seconds
            lag: dict[str, dict[float, float]] = {}  # per gateway: bucket -> ticks during its runs
            waited = dict.fromkeys(gateways, 0.0)
            wall = dict.fromkeys(gateways, 0.0)
            load0 = os.getloadavg()[0]
            for r in range(rounds):
                order = list(gateways) if r % 2 == 0 else list(reversed(gateways))
                for target in ["direct", *order]:
                    url = server_base + "/v1" if target == "direct" else gateways[target]
                    key = None if target == "direct" else KEY
                    b0 = lag_buckets(url) if target not in ("direct", CONTROL) else None
                    w0, t0 = (run_delay(pids[target]) if target != "direct" else 0.0), time.perf_counter()
                    s0 = steal_s()
                    got = run_ttfts(url, c, n, key)
                    run_steal = stolen_since(s0, t0)
                    ttfts[target] += got
                    later[target] += got[c:]
                    runs.append(
                        {
                            "c": c,
                            "round": r + 1,
                            "target": target,
                            "p50_ms": round(pct(got, 0.5), 2),
                            "p99_ms": round(pct(got, 0.99), 2),
                            "steal_ms_per_s": steal_ms_s(run_steal),
                        }
                    )
                    stolen[target] = [a + b for a, b in zip(stolen[target], run_steal, strict=True)]
                    if target != "direct":
                        waited[target] += run_delay(pids[target]) - w0
                        wall[target] += time.perf_counter() - t0
                    if b0 is not None:  # only this run's ticks (not those while the others ran)
                        b1 = lag_buckets(url) or {}
                        acc = lag.setdefault(target, {})
                        for le, count in b1.items():
                            acc[le] = acc.get(le, 0.0) + count - b0.get(le, 0.0)
            load1 = os.getloadavg()[0]
            d50, d99 = pct(ttfts["direct"], 0.5), pct(ttfts["direct"], 0.99)
            d99_later = pct(later["direct"], 0.99)

            for g in gateways:
                t = ttfts[g]
                lq = lag_quantiles({}, lag[g]) if lag.get(g) else {}
                rows.append(
                    {
                        "c": c,
                        "gateway": g,
                        "requests": len(t),
                        "direct_p50_ms": round(d50, 2),
                        "direct_p99_ms": round(d99, 2),
                        "added_p50_ms": round(pct(t, 0.5) - d50, 2),
                        "added_p99_ms": round(pct(t, 0.99) - d99, 2),
                        "added_p99_after_first_wave_ms": round(pct(later[g], 0.99) - d99_later, 2),
                        # ms per second of run the host kept CPU 0 / CPU 1 from running: direct, gateway
                        "steal_ms_per_s": {
                            "direct": steal_ms_s(stolen["direct"]),
                            "gateway": steal_ms_s(stolen[g]),
                        },
                        # beyond the control hop (nginx) in the same rounds: the gateway's own part
                        "over_control_p50_ms": (
                            round(pct(t, 0.5) - pct(ttfts[CONTROL], 0.5), 2) if CONTROL in ttfts else None
                        ),
                        "over_control_p99_ms": (
                            round(pct(t, 0.99) - pct(ttfts[CONTROL], 0.99), 2) if CONTROL in ttfts else None
                        ),
                        "loop_lag": lq,
                        # the gateway's loop runnable but without its CPU (another process had CPU 0)
                        "gateway_cpu_wait_share": round(waited[g] / max(wall[g], 1e-9), 3),
                        "gateway_rss_mb": round(rss_mb(pids[g]), 1),
                        "load": [round(load0, 2), round(load1, 2)],
                    }
                )
        report: dict = {"rows": rows, "rounds": rounds, "runs": runs}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
    if not args.no_wrk and shutil.which("wrk"):
        report["throughput"] = throughput(args, tmp, trees)
    return report


WAVES = 10  # a closed-loop run's start-up transient: its first waves of `c` requests


def steady(args: argparse.Namespace, tmp: Path) -> dict:
    """One continuous run per target and concurrency (about --steady seconds each), direct, the nginx
    control, this tree's gateway (and --baseline's), the order rotating; p99 over the whole run, and over the
    steady state after the start-up transient.

    A closed-loop run sends its first `c` requests at the same instant; against a server with fixed timing
    they also finish together, so the next `c` leave together too, and the gateway does each wave's
    pre-forward work one request after another (the 64th of a wave waits for 63). The waves spread out
    within about ten cycles. Short runs (the rounds of the default mode) are mostly that transient; a
    long run is mostly steady state, which is what a gateway in service sees."""
    server, server_base = spawn(20, 5, tokens=32)
    procs = [server]
    trees = trees_of(args, tmp)
    try:
        hops = start_hops(server_base, trees, tmp, args, procs)
        # direct first, then the control, then the gateways (the order rotates per concurrency)
        targets = {"direct": server_base + "/v1"}
        targets |= {name: url for name, (url, _pid) in sorted(hops.items(), key=lambda kv: kv[0] != CONTROL)}
        time.sleep(1)
        rows = []
        for k, c in enumerate(args.c or (16, 64)):
            n = int(args.steady * c / 0.18)  # a request takes about 0.18 s (20 ms + 31 x 5 ms)
            names = list(targets)
            names = names[k % len(names) :] + names[: k % len(names)]
            for name in names:
                url = targets[name]
                with_lag = name in trees
                b0 = lag_buckets(url) if with_lag else None
                s0, t0 = steal_s(), time.perf_counter()
                got = run_ttfts(url, c, n, None if name == "direct" else KEY)
                run_steal = stolen_since(s0, t0)
                tenth = max(1, len(got) // 10)
                rows.append(
                    {
                        "c": c,
                        "target": name,
                        "requests": len(got),
                        "seconds": round(run_steal[2], 1),
                        "p50_ms": round(pct(got, 0.5), 2),
                        "p99_ms": round(pct(got, 0.99), 2),
                        "steady_p50_ms": round(pct(got[WAVES * c :], 0.5), 2),
                        "steady_p99_ms": round(pct(got[WAVES * c :], 0.99), 2),
                        "p99_by_tenth_ms": [
                            round(pct(got[i : i + tenth], 0.99), 1) for i in range(0, tenth * 10, tenth)
                        ],
                        "steal_ms_per_s": steal_ms_s(run_steal),
                        "loop_lag": lag_quantiles(b0, lag_buckets(url) or {}) if b0 else None,
                    }
                )
        for row in rows:
            d = next(r for r in rows if r["c"] == row["c"] and r["target"] == "direct")
            for q in ("p50", "p99", "steady_p50", "steady_p99"):
                row[f"added_{q}_ms"] = round(row[f"{q}_ms"] - d[f"{q}_ms"], 2)
        return {"steady": rows, "seconds_per_run": args.steady}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


def steady_table(report: dict) -> str:
    lines = [
        "  c  target           requests      s  steal ms/s  p50 ms  p99 ms  steady p99  added p50 / p99"
        "  added steady p50 / p99  loop lag p99 / max    p99 by tenth of the run (ms)"
    ]
    for r in report["steady"]:
        lag = f"{r['loop_lag']['p99']} / {r['loop_lag']['max']}" if r["loop_lag"] else "-"
        lines.append(
            f"{r['c']:>3}  {r['target'][:15]:<15}  {r['requests']:>8}  {r['seconds']:>5.0f}  "
            f"{r['steal_ms_per_s'][0]:>4}/{r['steal_ms_per_s'][1]:<5}  {r['p50_ms']:>6.2f}  {r['p99_ms']:>6.2f}  "
            f"{r['steady_p99_ms']:>10.2f}  {r['added_p50_ms']:>+6.2f} / {r['added_p99_ms']:>+6.2f}  "
            f"{r['added_steady_p50_ms']:>+12.2f} / {r['added_steady_p99_ms']:>+6.2f}  {lag:<20}  "
            f"{r['p99_by_tenth_ms']}"
        )
    return "\n".join(lines)


CONTROL = "nginx (control)"
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream up {{ server {upstream}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


def start_nginx(upstream_base: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    """The control: nginx (compiled, one process, streaming unbuffered) as the hop on CPU 0 instead of the
    gateway. What it adds is what one more process on the other CPU costs on this machine; the gateway's
    own part is what it adds beyond that."""
    import socket

    tmp.mkdir(parents=True)
    port = _free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, upstream=upstream_base.removeprefix("http://"), port=port))
    proc = subprocess.Popen([*_pin(0), "nginx", "-p", str(tmp), "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(100):  # up to 10 s
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(
        f"nginx did not start: {(tmp / 'error.log').read_text() if (tmp / 'error.log').exists() else ''}"
    )


WRK_BODY = json.dumps(
    {
        "model": "chat",
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": True,
        "max_tokens": 32,
    }
)


def wrk(url: str, seconds: int, script: Path) -> dict:
    """wrk at c=64 on CPU 1 (beside the server): requests per second and anything that failed."""
    argv = [*_pin(1), "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(script), url]
    text = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "req_per_s": float(rate.group(1)) if rate else 0.0,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


def throughput(args: argparse.Namespace, tmp: Path, trees: dict[str, Path]) -> dict:
    """Streamed requests per second with wrk, each tree's gateway in turn, and the gateways' memory."""
    server, base = spawn(0, 0, tokens=32)
    procs = [server]
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(WRK_BODY)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
    )
    seconds = 5 if args.quick else 10
    rounds = 2 if args.quick else 3
    try:
        hops = start_hops(base, trees, tmp / "wrk", args, procs)
        urls = {name: url + "/chat/completions" for name, (url, _pid) in hops.items()}
        pids = {name: pid for name, (_url, pid) in hops.items()}
        time.sleep(1)
        idle = {name: round(rss_mb(pid), 1) for name, pid in pids.items()}
        runs: dict[str, list[dict]] = {"direct": [], **{g: [] for g in urls}}
        for r in range(rounds):
            order = list(urls) if r % 2 == 0 else list(reversed(urls))
            runs["direct"].append(wrk(base + "/v1/chat/completions", seconds, script))
            for g in order:
                runs[g].append(wrk(urls[g], seconds, script))
        out: dict = {"seconds_per_run": seconds, "rounds": rounds}
        for target, rs in runs.items():
            rates = [x["req_per_s"] for x in rs]
            row = {
                "req_per_s_median": round(statistics.median(rates)),
                "req_per_s_runs": [round(x) for x in rates],
                "failed": sum(x["non_2xx"] + x["socket_errors"] for x in rs),
            }
            if target in pids:
                row |= {
                    "rss_idle_mb": idle[target],
                    "rss_after_mb": round(rss_mb(pids[target]), 1),
                    "rss_peak_mb": round(peak_rss_mb(pids[target]), 1),
                }
            out[target] = row
        return out
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


def attribute(args: argparse.Namespace, tmp: Path) -> dict:
    """The trace summary of this tree's gateway; with --baseline, of both, alternating."""
    trees = trees_of(args, tmp)
    out: dict = {}
    for r in range(1 if args.quick or len(trees) == 1 else 2):
        for name, root in trees.items() if r % 2 == 0 else reversed(trees.items()):
            out[f"{name} (run {r + 1})"] = attribute_one(args, tmp / f"a{r}-{len(out)}", root)
    return out


def attribute_one(args: argparse.Namespace, tmp: Path, root: Path) -> dict:
    """Run with the lag trace on, then sort each spike by what ran during it."""
    server, server_base = spawn(20, 5, tokens=32)
    trace = tmp / "lag.jsonl"
    procs = [server]
    stop = threading.Event()
    try:
        (tmp / "gw").mkdir(parents=True)
        env = {"LLMOPS_GATEWAY_LAG_TRACE": str(trace)}
        gw, url = start_gateway(server_base + "/v1", tmp / "gw", root, env=env)
        procs.append(gw)
        time.sleep(1)

        def scrape() -> None:  # a Prometheus that scrapes every second
            while not stop.wait(1.0):
                lag_buckets(url)

        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        late_file = tmp / "bystander.json"
        bystander = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-c", BYSTANDER, "0", str(late_file)]
        )
        procs.append(bystander)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        s0 = steal_s()
        n = 2 * QUICK_N[64] * (1 if args.quick else 5)
        run_ttfts(url, 64, n, KEY)
        t1 = time.perf_counter()
        stolen = steal_s().get(0, 0.0) - s0.get(0, 0.0)
        stop.set()
        scraper.join()
        bystander.terminate()
        bystander.wait(15)
        gw.terminate()
        gw.wait(30)
    finally:
        stop.set()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
    ticks = [json.loads(line) for line in trace.read_text().splitlines()]
    ticks = [t for t in ticks if t0 <= t[0] <= t1]
    late = [tuple(x) for x in json.loads(late_file.read_text())] if late_file.exists() else []
    out = summarize_trace(ticks, load0, late)
    out["steal_cpu0_ms_per_s"] = round(stolen / max(t1 - t0, 1e-9) * 1000, 1)
    return out


# A process that does nothing but sleep 2 ms, on the gateway's CPU, at the lowest priority: it records when
# it woke up late (>= 1 ms) and by how much. A lag spike of the gateway that this bystander shared (the loop
# thread off its CPU, and the bystander not woken either) is the host not running this virtual CPU.
BYSTANDER = """
import json, os, signal, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
late, clock, sleep = [], time.perf_counter, time.sleep
while not stop:
    t = clock()
    sleep(0.002)
    now = clock()
    if now - t - 0.002 >= 0.001:
        late.append((round(now, 6), round(now - t - 0.002, 6)))
with open(sys.argv[2], "w") as f:
    json.dump(late, f)
"""


def shared_late(late: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] during which the bystander was also overdue (the longest overlap)."""
    best = 0.0
    for woke, by in late:  # few entries (late wake-ups only): a scan is fine
        overlap = min(end, woke) - max(start, woke - by)
        if overlap > best:
            best = overlap
    return best


HOST = "host: this virtual CPU not running (steal counted, or the bystander on it as late)"


def _cause(own: float, c: dict[str, float], shared: float = 0.0) -> str:
    """The one cause a spike of the loop's own lag (lag less its wait for a CPU) is put down to; `shared`:
    how long the bystander on the same CPU was overdue over the same interval."""
    gc_s = c.get("gc0_s", 0) + c.get("gc1_s", 0) + c.get("gc2_s", 0)
    # Since the tick before, the thread ran on_cpu_s; a loop that is late was busy after the tick fell
    # due, so own lag it did not spend on a CPU it spent off it: not runnable in this kernel's eyes.
    # If a bystander process on the same CPU was kept waiting as long, nothing ran there: the hypervisor
    # had descheduled the virtual CPU (steal). Otherwise the thread was asleep: waiting for the GIL that
    # another thread held (the usage writer) or in a blocking call.
    if c.get("steal_s", 0) >= own / 2:  # the kernel's own count (10 ms units) of time stolen by the host
        return HOST
    if own - c.get("on_cpu_s", own) >= own / 2:
        if shared >= own / 2:
            return HOST
        return "loop's thread asleep (GIL held by another thread, or a blocking call)"
    if c.get("gc2_s", 0) >= own / 2:
        return "gc generation 2"
    if gc_s >= own / 2:
        return "gc generation 0/1"
    if c.get("metrics_render_s", 0) >= own / 2:
        return "/metrics render"
    if c.get("upstream_connects"):
        return "upstream connection set-up"
    if c.get("usage_batches"):
        return "usage-log batch written (thread)"
    return "request work only"


def summarize_trace(ticks: list, load: float, late: list[tuple[float, float]] | None = None) -> dict:
    """Lag percentiles, then each spike put down to one cause.

    On a shared machine most lag is the loop's thread waiting for a CPU that another process has
    (`cpu_wait_s`, from schedstat): that is counted apart, and the causes are sorted on what is left,
    the loop's own lag (lag - wait), which is what the gateway can change."""
    lags = [t[1] for t in ticks]
    own = [max(0.0, lag - c.get("cpu_wait_s", 0.0)) for _t, lag, c in ticks]
    by_cause: dict[str, list[float]] = {}
    waited = []
    for (t, lag, causes), o in zip(ticks, own, strict=True):
        if lag >= SPIKE_S and o < SPIKE_S:
            waited.append(lag)
        elif o >= SPIKE_S:
            shared = shared_late(late, t - lag, t) if late else 0.0
            by_cause.setdefault(_cause(o, causes, shared), []).append(o)
    spikes = sum(len(v) for v in by_cause.values())
    total: dict[str, float] = {}
    for _t, _lag, causes in ticks:
        for k, v in causes.items():
            total[k] = total.get(k, 0.0) + v
    seconds = (ticks[-1][0] - ticks[0][0]) if len(ticks) > 1 else 1.0

    def qs(v: list[float]) -> dict[str, float]:
        return {q: round(pct(v, x) * 1000, 2) for q, x in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))} | {
            "max": round(max(v) * 1000, 2)
        }

    return {
        "seconds": round(seconds, 1),
        "load": round(load, 2),
        "ticks": len(lags),
        "lag_ms": qs(lags),
        "own_lag_ms": qs(own),
        "spikes_over_ms": SPIKE_S * 1000,
        "spikes_from_cpu_wait_only": len(waited),
        "bystander_late_wakeups": len(late) if late is not None else None,
        # the kernel's steal count moves in 10 ms steps: how often a tick saw one, spikes (lag >= 5 ms)
        # against all ticks
        "ticks_with_steal": {
            "all": round(sum(1 for t in ticks if t[2].get("steal_s", 0) > 0) / max(len(ticks), 1), 3),
            "spikes": round(
                sum(1 for t in ticks if t[1] >= SPIKE_S and t[2].get("steal_s", 0) > 0)
                / max(sum(1 for t in ticks if t[1] >= SPIKE_S), 1),
                3,
            ),
        },
        "own_spikes": spikes,
        "own_spikes_by_cause": {
            k: {
                "spikes": len(v),
                "share": round(len(v) / max(spikes, 1), 3),
                "mean_own_lag_ms": round(statistics.mean(v) * 1000, 2),
                "max_own_lag_ms": round(max(v) * 1000, 2),
            }
            for k, v in sorted(by_cause.items(), key=lambda kv: -len(kv[1]))
        },
        "gc": {
            f"gen{g}": {
                "ticks_with_one": sum(1 for t in ticks if f"gc{g}_s" in t[2]),
                "max_cpu_ms_in_a_tick": round(
                    max((t[2].get(f"gc{g}_s", 0) for t in ticks), default=0) * 1000, 2
                ),
                "cpu_ms_per_s": round(total.get(f"gc{g}_s", 0) / seconds * 1000, 2),
            }
            for g in (0, 1, 2)
        },
        "per_second": {k: round(v / seconds, 4 if k.endswith("_s") else 1) for k, v in sorted(total.items())},
    }


def table(report: dict) -> str:
    lines = [
        "  c  gateway          requests  direct p50/p99 ms  added p50 ms  added p99 ms  (after 1st wave)"
        "  over nginx p50/p99"
        "  loop lag p50 / p99 / p99.9 / max             gw CPU wait  steal ms/s direct | gw  RSS MB  load",
    ]
    for r in report["rows"]:
        lq = r["loop_lag"]
        lag = " / ".join(lq.get(k, "-") for k in ("p50", "p99", "p99.9", "max")) if lq else "(no metric)"
        st = r["steal_ms_per_s"]
        steal = f"{st['direct'][0]}/{st['direct'][1]} | {st['gateway'][0]}/{st['gateway'][1]}"
        ctl = (
            f"{r['over_control_p50_ms']:+.2f} / {r['over_control_p99_ms']:+.2f}"
            if r.get("over_control_p99_ms") is not None and r["gateway"] != CONTROL
            else "-"
        )
        lines.append(
            f"{r['c']:>3}  {r['gateway'][:15]:<15}  {r['requests']:>8}  "
            f"{r['direct_p50_ms']:>7.2f} / {r['direct_p99_ms']:>6.2f}  {r['added_p50_ms']:>+12.2f}  "
            f"{r['added_p99_ms']:>+12.2f}  {r['added_p99_after_first_wave_ms']:>+16.2f}  {ctl:>18}  "
            f"{lag:<43} {r['gateway_cpu_wait_share']:>10.0%}  {steal:>21}  "
            f"{r['gateway_rss_mb']:>6.1f}  "
            f"{r['load'][0]:.2f}-{r['load'][1]:.2f}"
        )
    tp = report.get("throughput")
    if tp:
        lines.append("")
        lines.append(
            f"wrk, c=64, 32-token streams from an instant server, {tp['rounds']} x {tp['seconds_per_run']} s each:"
        )
        for target, row in tp.items():
            if not isinstance(row, dict):
                continue
            mem = (
                f"  RSS idle {row['rss_idle_mb']} MB, after {row['rss_after_mb']} MB, peak {row['rss_peak_mb']} MB"
                if "rss_idle_mb" in row
                else ""
            )
            lines.append(
                f"  {target[:15]:<15} {row['req_per_s_median']:>7,} req/s median {row['req_per_s_runs']}"
                f"  failed {row['failed']}{mem}"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 rounds, fewer requests (about 2 minutes)")
    p.add_argument("--baseline", metavar="REF", help="also run the gateway as of this git ref, alternating")
    p.add_argument("--rounds", type=int, help="rounds (default 5; 2 with --quick)")
    p.add_argument("--c", type=int, action="append", help="with --steady: only this concurrency (repeatable)")
    p.add_argument(
        "--steady",
        type=float,
        metavar="SECONDS",
        help="one continuous run of about SECONDS per target at c=16 and c=64 (steady state, not rounds)",
    )
    p.add_argument("--no-wrk", action="store_true", help="skip the wrk throughput and memory check")
    p.add_argument("--no-nginx", action="store_true", help="skip the nginx control hop")
    p.add_argument("--attribute", action="store_true", help="trace loop lag at c=64 and sort the spikes")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    a = p.parse_args()
    if CPUS > 1:
        os.sched_setaffinity(0, {1})  # the client shares CPU 1 with the fake server
    tmp = Path(tempfile.mkdtemp(prefix="bench-tail-"))
    try:
        report = attribute(a, tmp) if a.attribute else steady(a, tmp) if a.steady else ab(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["cpus"] = CPUS
    if a.json or a.attribute:
        print(json.dumps(report, indent=2))
    else:
        print(steady_table(report) if a.steady else table(report))


if __name__ == "__main__":
    main()
