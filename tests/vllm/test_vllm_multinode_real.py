"""Two hosts, for real: network namespaces joined by a veth pair (10.213.0.1 head, 10.213.0.2 follower), each
running exactly the `llmops serve` command that `--dry-run` prints for it, SmolLM2 split with --pp 2 across
them by vLLM's own multi-node launcher. Then the failures: a follower pointed at a wrong address, a master
port already taken, a follower killed mid-serve. Nothing is left behind (processes, namespaces, links).

One cluster start (~100 s with the compile cache, ~3 min cold) shared by the tests; the failure tests
that need no start run first and take seconds."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vllm import netns
from tests.vllm.conftest import (
    Start,
    VllmServer,
    assert_group_gone,
    llmops_env,
    logged_kv_tokens,
    require_vllm_env,
    serving_all,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(netns.available() is not None, reason=str(netns.available())),
]

MASTER_PORT = 29511  # inside the test's own namespaces
API_PORT = 8123


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[netns.Host, netns.Host]]:
    with netns.two_hosts() as pair:
        yield pair


def llmops(data_dir: Path, *args: str, prefix: tuple[str, ...] = (), timeout: float = 120):
    return subprocess.run(
        [*prefix, sys.executable, "-m", "llmops", *args],
        capture_output=True, text=True, env=llmops_env(data_dir), timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def host_args(data_dir: Path, head_addr: str) -> list[list[str]]:
    """What `llmops serve ... --dry-run` tells each host to run (head first), as `serve` arguments."""
    result = llmops(data_dir, "serve", "smollm2-vllm", "--pp", "2", "--port", str(API_PORT), "--nnodes", "2",
                    "--master-addr", head_addr, "--master-port", str(MASTER_PORT), "--dry-run", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    hosts = json.loads(result.stdout)["hosts"]
    assert [h["role"] for h in hosts] == ["head", "follower"]
    argvs = [shlex.split(h["command"]) for h in hosts]
    assert all(argv[:2] == ["llmops", "serve"] for argv in argvs)
    return [argv[2:] for argv in argvs]


def test_a_follower_pointed_at_a_wrong_address_says_so_within_seconds(hosts, vllm_data_dir) -> None:
    _head, follower = hosts
    _, follower_args = host_args(vllm_data_dir, "10.213.0.9")  # in the subnet, no such host
    _, off_subnet = host_args(vllm_data_dir, "10.99.0.1")
    for args, why in ((follower_args, "no answer"), (off_subnet, "no route to it")):
        started = time.monotonic()
        result = llmops(vllm_data_dir, "serve", *args, prefix=follower.prefix)
        took = time.monotonic() - started
        assert result.returncode == 3, result.stderr
        assert (
            f"cannot reach the head {args[args.index('--master-addr') + 1]}:{MASTER_PORT} from this host ({why} within 3 s)"
            in result.stderr
        )
        assert took < 20  # python and llmops's imports on 2 busy cores, then a 3-second reach check
    assert netns.pids_in(follower.ns) == []


def test_a_taken_master_port_is_refused_on_the_head_before_launching(hosts, vllm_data_dir) -> None:
    head, _follower = hosts
    holder = subprocess.Popen(
        [*head.prefix, sys.executable, "-c", "import socket, sys, time; s = socket.create_server("
         f"('{head.addr}', {MASTER_PORT})); print('bound', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "bound"
        head_args, _ = host_args(vllm_data_dir, head.addr)
        result = llmops(vllm_data_dir, "serve", *head_args, prefix=head.prefix)
        assert result.returncode == 2, result.stderr
        assert f"the master port {MASTER_PORT} on {head.addr} is already in use" in result.stderr
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def cluster(hosts, vllm_data_dir: Path) -> Iterator[tuple[VllmServer, VllmServer]]:
    """The head and the follower, each started in its namespace with its printed command. Both "hosts"
    share this machine's 2 cores: each worker gets its own (a real host would bind its own cores)."""
    require_vllm_env()
    head, follower = hosts
    head_args, follower_args = host_args(vllm_data_dir, head.addr)
    with serving_all(
        vllm_data_dir,
        Start("head", tuple(head_args), head.prefix, (("LLMOPS_SERVE_CPU_OMP_THREADS_BIND", "0"),)),
        Start(
            "follower", tuple(follower_args), follower.prefix, (("LLMOPS_SERVE_CPU_OMP_THREADS_BIND", "1"),)
        ),
    ) as (head_server, follower_server):
        yield head_server, follower_server


def chat_in(host: netns.Host, base_url: str, text: str, max_tokens: int = 16) -> dict:
    """A chat request sent from inside `host`'s namespace (the API listens on its loopback)."""
    body = {"model": "smollm2-vllm", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0}  # fmt: skip
    code = (
        "import httpx, json, sys; r = httpx.post(sys.argv[1] + '/chat/completions', json=json.loads(sys.argv[2]), "
        "timeout=300, trust_env=False); r.raise_for_status(); print(r.text)"
    )
    result = subprocess.run(
        [*host.prefix, sys.executable, "-c", code, base_url, json.dumps(body)],
        capture_output=True, text=True, timeout=320,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_pp2_across_two_hosts_answers_through_the_head(cluster, hosts) -> None:
    head_server, follower_server = cluster
    head, _ = hosts
    assert follower_server.base_url == ""  # the follower serves no API: its JSON names its head
    answer = chat_in(head, head_server.base_url, "What is the capital of France? Write a long essay.")
    assert "Paris" in answer["choices"][0]["message"]["content"]
    head_log, follower_log = head_server.log.read_text(), follower_server.log.read_text()
    assert "world_size=2 rank=0" in head_log and "world_size=2 rank=1" in follower_log
    assert f"distributed_init_method=tcp://{head.addr}:{MASTER_PORT}" in follower_log
    assert logged_kv_tokens(head_log) == 93_184  # the planner's figure for PP 2 (test_vllm_pp_real.py)


def test_a_follower_killed_mid_serve_stops_the_head_naming_the_lost_host(cluster, hosts) -> None:
    head_server, follower_server = cluster
    _, follower = hosts
    os.killpg(follower_server.pid, signal.SIGKILL)  # the follower's engine dies
    rc = head_server.proc.wait(60)
    assert rc == 1
    err = head_server.err.read_text()
    assert f"lost the follower {follower.addr}: its connections to this host closed" in err, err[-2000:]
    assert follower_server.proc.wait(60) == 1  # the follower's llmops reports its engine's death
    assert_group_gone(head_server.pid)  # nothing of the head's engine is left
