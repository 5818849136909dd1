"""vLLM's Ray backend across nodes: how many nodes, and the `ray start` steps to run on each."""

from __future__ import annotations

from llmops.serve.engines.base import Launch
from llmops.serve.preflight import nodes_needed
from llmops.serve.settings import ServeSettings

RAY_PORT = 6379


def ray_steps(s: ServeSettings, launch: Launch, head: str = "<head-node-ip>") -> list[str]:
    """Shell steps, in order, for a Ray cluster big enough for TP x PP; empty when one node is enough."""
    from llmops.serve.engines.vllm import needs_ray

    nodes = nodes_needed(s)
    if nodes <= 1 or s.engine != "vllm" or not needs_ray(s):
        return []
    return [
        f"# on the head node (runs the engine): start Ray for {nodes} nodes x {s.node.gpu_count} GPUs",
        f"ray start --head --port={RAY_PORT} --num-gpus={s.node.gpu_count}",
        f"# on each of the other {nodes - 1} node(s) of {s.node.name}, with the same model files and vLLM:",
        f"ray start --address={head}:{RAY_PORT} --num-gpus={s.node.gpu_count} --block",
        "# check that every node joined (`ray status` lists them), then on the head node:",
        launch.command_line(),
    ]


# Asked of Ray itself, in the engine's environment (where vLLM and Ray live): never re-implemented here.
RAY_PROBE = (
    "import json, ray; ray.init(address='auto', logging_level='ERROR'); "
    "r = ray.cluster_resources(); print(json.dumps({'gpus': r.get('GPU', 0), "
    "'nodes': sum(1 for n in ray.nodes() if n['Alive'])}))"
)


def ray_cluster(python: str, timeout: float = 60.0) -> dict | str:
    """The running Ray cluster's alive nodes and GPUs ({"gpus", "nodes"}), or why it could not be read."""
    import json
    import subprocess

    try:
        done = subprocess.run(
            [python, "-c", RAY_PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not ask Ray ({type(exc).__name__})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Ray cluster to join from here ({last})"
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"Ray answered {done.stdout.strip()[:200]!r}"
