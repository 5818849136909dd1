"""TP x PP on vLLM's CPU build and vLLM's own multi-node launcher, without starting vLLM: the settings chosen
from the node profile (per-worker binding, compiled mode), pre-flight refusals in one line, each host's
command, the follower's reachability check and the head's view of joined followers."""

from __future__ import annotations

import json
import shlex
import socket
import sys
import time
from pathlib import Path

import pytest

from llmops.errors import EnvironmentMissing
from llmops.serve.multinode import joined_peers, wait_for_head
from llmops.serve.settings import split_cores

from .conftest import pool_70b_tp4_pp2


def fake_env(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to(sys.executable)
    return root


@pytest.fixture
def vllm_env(monkeypatch, tmp_path: Path, smollm2_gguf) -> Path:
    env_dir = fake_env(tmp_path / "venv-vllm")
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_ENV", str(env_dir))
    return env_dir


def dry(cli, *args: str) -> dict:
    result = cli("serve", "smollm2-vllm", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_pp2_binds_one_core_per_worker_and_compiles_instead_of_the_nodes_eager_mode(cli, vllm_env) -> None:
    doc = dry(cli, "--pp", "2", "--port", "8123")
    assert doc["settings"]["cpu_omp_threads_bind"] == {"value": "0|1", "origin": "derived"}
    assert doc["settings"]["enforce_eager"] == {"value": False, "origin": "derived"}  # the node says true
    assert doc["env"] == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0|1"}
    assert doc["argv"][-5:] == [
        "--pipeline-parallel-size",
        "2",
        "--max-model-len",
        "2048",
        "--no-enforce-eager",
    ]
    plan = next(c for c in doc["checks"] if c["name"] == "plan")
    assert "93,184 tokens" in plan["detail"]  # two stages x 46,592 (1 GiB each)
    assert doc["hosts"] == [] and doc["ray_steps"] == []


def test_a_binding_someone_set_is_kept(cli, vllm_env, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_CPU_OMP_THREADS_BIND", "1|0")
    doc = dry(cli, "--pp", "2")
    assert doc["settings"]["cpu_omp_threads_bind"] == {"value": "1|0", "origin": "env"}


def test_split_cores() -> None:
    assert split_cores(2, 2) == "0|1"
    assert split_cores(8, 2) == "0-3|4-7"
    assert split_cores(6, 3) == "0-1|2-3|4-5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tp", "2"],
            "smollm2-vllm has 9 attention heads; TP 2 does not divide them; choose --tp from 1, 3, 9",
        ),
        (["--pp", "3"], "TP 1 x PP 3 puts 3 vLLM workers on this host; local-cpu has 2 core(s)"),
        (["--pp", "2", "--enforce-eager"], "--pp 2 with enforce_eager on vLLM's CPU build dies on the first"),
        (["--pp", "2", "--distributed-executor-backend", "ray"], "vLLM's CPU build refuses the Ray executor"),
        (["--pp", "2", "--nnodes", "2"], "--nnodes 2 needs the head's address for every host"),
        (
            ["--pp", "2", "--nnodes", "2", "--master-addr", "h", "--node-rank", "2"],
            "--node-rank 2 is outside",
        ),
        (
            ["--pp", "3", "--nnodes", "2", "--master-addr", "h"],
            "3 workers do not split evenly over --nnodes 2",
        ),
    ],
)
def test_preflight_refuses_in_one_line_exit_2_before_launching(cli, vllm_env, args, message) -> None:
    for extra in (["--dry-run"], []):  # the same refusal for a real start: nothing is launched
        result = cli("serve", "smollm2-vllm", *args, *extra)
        assert result.exit_code == 2, result.output
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2  # the error and its hint


def test_eager_with_pp_names_where_it_was_set(cli, vllm_env, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_ENFORCE_EAGER", "true")
    result = cli("serve", "smollm2-vllm", "--pp", "2", "--dry-run")
    assert result.exit_code == 2 and "set by LLMOPS_SERVE_ENFORCE_EAGER" in result.stderr


def test_multinode_gives_each_host_its_command_and_the_follower_is_headless(cli, vllm_env) -> None:
    cluster = ["--pp", "2", "--port", "8123", "--nnodes", "2", "--master-addr", "10.213.0.1"]
    head = dry(cli, *cluster, "--master-port", "29511")
    assert [h["role"] for h in head["hosts"]] == ["head", "follower"]
    common = (
        "llmops serve smollm2-vllm --node local-cpu --port 8123 --pp 2 --nnodes 2 --master-addr 10.213.0.1"
    )
    assert head["hosts"][1]["command"] == f"{common} --master-port 29511 --node-rank 1"
    launcher = ["--nnodes", "2", "--node-rank", "0", "--master-addr", "10.213.0.1", "--master-port", "29511"]
    assert " ".join(launcher) in " ".join(head["argv"]) and "--headless" not in head["argv"]
    assert head["settings"]["enforce_eager"]["value"] is False  # PP across hosts compiles too
    assert head["env"] == {"VLLM_CPU_KVCACHE_SPACE": "1"}  # one worker per host: no split binding
    # the follower's printed command, run as printed, is the same launch with rank 1 and --headless
    follower_args = shlex.split(head["hosts"][1]["command"])[2:]
    follower = json.loads(cli("serve", *follower_args, "--dry-run", "--json").stdout)
    assert follower["argv"] == [*head["argv"][: head["argv"].index("--node-rank") + 1], "1",
                                *launcher[4:], "--headless", *head["argv"][head["argv"].index("--master-port") + 2:]]  # fmt: skip
    assert follower["health_path"] is None
    text = cli("serve", *follower_args, "--dry-run").stdout
    assert "# head (rank 0):\n" + head["hosts"][0]["command"] in text


def test_gpu_pool_with_nnodes_uses_vllms_launcher_not_ray(cli, a100_pool) -> None:
    base = pool_70b_tp4_pp2(a100_pool)
    result = cli(*base, "--nnodes", "2", "--master-addr", "10.0.0.1", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert "ray" not in doc["argv"] and "--nnodes" in doc["argv"] and doc["ray_steps"] == []
    assert len(doc["hosts"]) == 2
    ray = json.loads(cli(*base, "--dry-run", "--json").stdout)  # no --nnodes: Ray, as before
    assert "ray" in ray["argv"] and ray["ray_steps"] and ray["hosts"] == []


def test_follower_reaches_a_listening_head() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        wait_for_head("127.0.0.1", server.getsockname()[1], timeout=5)


def test_follower_says_within_seconds_that_the_head_is_not_there() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EnvironmentMissing, match=f"the head 127.0.0.1:{port} refused connections for 1 s"):
        wait_for_head("127.0.0.1", port, timeout=1)
    assert time.monotonic() - started < 3
    # unreachable addresses (no route, no host) are tested in the follower's own network namespace:
    # tests/vllm/test_vllm_multinode_real.py (this machine's own network may accept any connection)


def test_an_unreachable_head_is_named_within_the_reach_timeout(monkeypatch) -> None:
    def no_answer(address, timeout):
        time.sleep(0.01)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", no_answer)
    with pytest.raises(
        EnvironmentMissing, match=r"cannot reach the head 10.9.9.9:29511 from this host \(no answer"
    ):
        wait_for_head("10.9.9.9", 29511, timeout=600, reach_timeout=3)


def test_joined_peers_sees_an_established_connection_but_not_the_apis_clients() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            conn, _ = server.accept()
            with conn:
                assert "127.0.0.1" in joined_peers(port)
                assert joined_peers(port, besides=port) == set()


def test_peer_watch_names_a_host_that_was_seen_and_then_lost(cli, vllm_env, monkeypatch) -> None:
    from llmops.profiles.loader import Catalog
    from llmops.serve import multinode
    from llmops.serve.settings import resolve_settings

    catalog = Catalog.discover(None)
    flags = {"pipeline_parallel_size": 2, "nnodes": 2, "master_addr": "10.213.0.1"}
    s = resolve_settings(catalog.model("smollm2-vllm").profile, catalog.node("local-cpu").profile, flags)
    seen = {"10.213.0.2", "127.0.0.1", "10.213.0.1"}
    monkeypatch.setattr(multinode, "joined_peers", lambda port=None, besides=None: set(seen))
    watch = multinode.PeerWatch(s, grace=3)
    assert watch.poll(now=100) is None and watch.last_seen == {"10.213.0.2": 100}
    seen.discard("10.213.0.2")
    assert watch.poll(now=102) is None  # within the grace period
    assert watch.poll(now=104) == (
        "lost the follower 10.213.0.2: its connections to this host closed 4 s ago (killed, stopped or "
        "unreachable); the engine here was stopped"
    )
    follower = multinode.PeerWatch(s.with_values(node_rank=1), grace=3)
    seen.add("10.213.0.9")  # not the head: a follower watches only its head
    assert follower.poll(now=1) is None and follower.last_seen == {"10.213.0.1": 1}


def test_k8s_with_nnodes_renders_vllms_launcher_in_a_leaderworkerset(cli, a100_pool) -> None:
    base = pool_70b_tp4_pp2(a100_pool)
    result = cli(*base, "--nnodes", "2", "--master-port", "29511", "--k8s", "--json")
    assert result.exit_code == 0, result.output
    lws = next(d for d in json.loads(result.stdout) if d["kind"] == "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    launcher = [
        "--nnodes",
        "2",
        "--node-rank",
        "0",
        "--master-addr",
        "$(LWS_LEADER_ADDRESS)",
        "--master-port",
        "29511",
    ]
    assert leader["command"][:2] == ["vllm", "serve"] and "ray" not in leader["command"]
    assert " ".join(launcher) in " ".join(leader["command"]) and "--headless" not in leader["command"]
    worker_launcher = [*launcher[:3], "$(LWS_WORKER_INDEX)", *launcher[4:], "--headless"]
    assert " ".join(worker_launcher) in " ".join(worker["command"])
    ray = json.loads(cli(*base, "--k8s", "--json").stdout)  # without --nnodes: the Ray group, as before
    ray_leader = next(d for d in ray if d["kind"] == "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    assert "ray start --head" in " ".join(ray_leader["leaderTemplate"]["spec"]["containers"][0]["command"])


def test_a_node_profile_with_several_hosts_describes_the_cluster_once(cli, vllm_env, tmp_path: Path) -> None:
    nodes = tmp_path / "profiles" / "nodes"
    nodes.mkdir(parents=True)
    (nodes / "two-cpus.yaml").write_text(
        "name: two-cpus\ncpu: {cores: 4, ram_gib: 16}\ncount: 2\n"
        "serving: {nnodes: 2, master_addr: 10.0.0.5, master_port: 29600, cpu_kvcache_space_gib: 1}\n"
    )
    result = cli("--profiles-dir", str(tmp_path / "profiles"), "serve", "smollm2-vllm", "--node", "two-cpus",
                 "--pp", "2", "--dry-run", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["master_addr"] == {"value": "10.0.0.5", "origin": "node"}
    assert [h["command"] for h in doc["hosts"]] == [
        "llmops serve smollm2-vllm --node two-cpus --pp 2 --nnodes 2 --master-addr 10.0.0.5 --master-port 29600 "
        f"--node-rank {rank}"
        for rank in (0, 1)
    ]


def test_the_heads_timeout_names_the_missing_followers(vllm_env, monkeypatch) -> None:
    from llmops.profiles.loader import Catalog
    from llmops.serve import multinode
    from llmops.serve.settings import resolve_settings

    catalog = Catalog.discover(None)
    flags = {"pipeline_parallel_size": 2, "nnodes": 2, "master_addr": "10.213.0.1", "master_port": 29511}
    s = resolve_settings(catalog.model("smollm2-vllm").profile, catalog.node("local-cpu").profile, flags)
    monkeypatch.setattr(multinode, "joined_peers", lambda port=None, besides=None: {"127.0.0.1"})
    assert multinode.missing_followers(s) == (
        "1 of 1 follower(s) missing at 10.213.0.1:29511 (none connected); on each follower run: llmops serve "
        "smollm2-vllm --node local-cpu --pp 2 --nnodes 2 --master-addr 10.213.0.1 --master-port 29511 --node-rank 1"
    )


@pytest.mark.parametrize(
    ("found", "ok", "message"),
    [
        ({"gpus": 8, "nodes": 2}, True, "Ray sees 2 node(s), 8 GPU(s); 8 needed"),
        ({"gpus": 4, "nodes": 1}, False, "Ray sees 1 node(s), 4 GPU(s); 8 needed"),
        (
            "no Ray cluster to join from here (ConnectionError: ...)",
            False,
            "uses Ray: no Ray cluster to join",
        ),
    ],
)
def test_the_ray_cluster_is_asked_of_ray_before_launching(
    a100_pool, monkeypatch, tmp_path, found, ok, message
):
    from llmops.profiles.loader import Catalog
    from llmops.serve import prepare, ray
    from llmops.serve.preflight import check_ray_cluster

    monkeypatch.setattr(ray, "ray_cluster", lambda python, timeout=60.0: found)
    catalog = Catalog.discover(a100_pool)
    flags = {
        "tensor_parallel_size": 4,
        "pipeline_parallel_size": 2,
        "engine_env": str(fake_env(tmp_path / "e")),
    }
    prepared = prepare(
        catalog.model("llama-70b").profile, catalog.node("a100-pool").profile, flags, env=False
    )
    check = check_ray_cluster(prepared.settings, prepared.launch)
    assert check.ok is ok and message in (check.detail if ok else check.error.message)
    if not ok:
        assert "ray start --head --port=6379 --num-gpus=4" in check.error.hint
    mp = prepare(catalog.model("llama-70b").profile, catalog.node("a100-pool").profile,
                 {**flags, "nnodes": 2, "master_addr": "10.0.0.1"}, env=False)  # fmt: skip
    assert check_ray_cluster(mp.settings, mp.launch).ok is None  # vLLM's own launcher: no Ray
