"""Kubernetes manifests from the same profiles: Deployment + Service on one node, LeaderWorkerSet beyond.

The multi-node form is a LeaderWorkerSet group (one pod per node). With Ray (GPU pools without --nnodes) the
leader starts the Ray head and the engine once every worker has joined; workers join the head and block.
With vLLM's own launcher (--nnodes) every pod runs `vllm serve` with its rank, workers `--headless`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from llmops.errors import UsageError
from llmops.k8s import k8s_name, service, service_monitor, to_yaml
from llmops.serve.api import Prepared
from llmops.serve.engines import get_engine
from llmops.serve.engines.vllm import needs_ray
from llmops.serve.preflight import nodes_needed
from llmops.serve.ray import RAY_PORT

VLLM_IMAGE = "vllm/vllm-openai:latest"
CONTAINER_PORT = 8000
HF_SECRET = {"name": "hf-token", "key": "token"}
SHM_SIZE = "16Gi"
LWS_API = "leaderworkerset.x-k8s.io/v1"


def _container_argv(prepared: Prepared, **values: Any) -> list[str]:
    """The engine argv for a pod: listen on every interface, on the container port."""
    s = prepared.settings.with_values(host="0.0.0.0", port=CONTAINER_PORT, **values)
    return get_engine(s.engine).launch(s).argv


LEADER_ADDRESS = "$(LWS_LEADER_ADDRESS)"  # set by LeaderWorkerSet in every pod of a group


def k8s_checks(prepared: Prepared, *, force: bool) -> list[Any]:
    """The configuration checks for manifests: a group's leader address is LeaderWorkerSet's to give."""
    from llmops.serve.preflight import config_checks

    s = prepared.settings
    if s.nnodes > 1 and not s.get("master_addr"):
        s = s.with_values(master_addr=LEADER_ADDRESS)
    return config_checks(s, prepared.launch, force=force)


def _launcher_argvs(prepared: Prepared) -> tuple[list[str], list[str]]:
    """vLLM's own multi-node launcher in a LeaderWorkerSet group: the same `vllm serve` as `llmops serve
    --nnodes` prints, the leader's address and each worker's index from the variables LWS sets."""
    head = _container_argv(prepared, master_addr=LEADER_ADDRESS, node_rank=0)
    worker = _container_argv(prepared, master_addr=LEADER_ADDRESS, node_rank=1)
    worker[worker.index("--node-rank") + 1] = "$(LWS_WORKER_INDEX)"
    return head, worker


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures}


def _env() -> list[dict[str, Any]]:
    return [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {**HF_SECRET, "optional": True}}}]


def _shm() -> tuple[dict[str, Any], dict[str, Any]]:
    volume = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}
    mount = {"name": "dshm", "mountPath": "/dev/shm"}
    return volume, mount


def _engine_container(
    name: str, image: str, command: list[str], gpus: int, *, probes: bool
) -> dict[str, Any]:
    _, mount = _shm()
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": command,
        "env": _env(),
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
        "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}},
        "volumeMounts": [mount],
    }
    if probes:
        # Loading weights takes minutes: the startup probe holds liveness off until /health answers once.
        container["startupProbe"] = _probe("/health", period=10, failures=90)
        container["readinessProbe"] = _probe("/health", period=5, failures=3)
        container["livenessProbe"] = _probe("/health", period=15, failures=4)
    else:
        container["ports"] = []
    return container


def manifests(prepared: Prepared, *, replicas: int = 1, image: str = VLLM_IMAGE) -> list[dict[str, Any]]:
    """Deployment + Service when TP x PP fits one node, else LeaderWorkerSet + Service. The image is the
    `engine_image` setting when set (a profile, the workspace, LLMOPS_SERVE_ENGINE_IMAGE), else `image`."""
    s = prepared.settings
    image = s.get("engine_image") or image
    if get_engine(s.engine).name != "vllm":
        raise UsageError(
            f"--k8s writes vLLM manifests; model '{s.model.name}' uses the {s.engine} engine",
            hint="add --engine vllm (with a Hugging Face source)",
        )
    if not s.model.source.hf:
        raise UsageError(
            f"--k8s needs a Hugging Face source the pod can download; '{s.model.name}' comes from "
            f"{s.model.source.describe()}",
            hint="use a profile with source.hf",
        )
    name = k8s_name(s.served_name)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "llmops"}
    argv = _container_argv(prepared)
    nodes = nodes_needed(s)
    if nodes <= 1:
        return [
            _deployment(name, image, labels, argv, s.tp * s.pp, s.node.labels, replicas),
            _service(name, labels),
            service_monitor(name),
        ]
    if needs_ray(s):
        lws = _leader_worker_set(name, image, labels, argv, s.node.gpu_count, nodes, s.node.labels, replicas)
    else:
        head_argv, worker_argv = _launcher_argvs(prepared)
        leader = _engine_container("vllm-leader", image, head_argv, s.node.gpu_count, probes=True)
        worker = _engine_container("vllm-worker", image, worker_argv, s.node.gpu_count, probes=False)
        lws = _group(name, labels, leader, worker, nodes, s.node.labels, replicas)
    return [
        lws,
        _service(name, {**labels, "role": "leader"}),
        service_monitor(name),
    ]


def _pod_spec(containers: list[dict[str, Any]], node_labels: dict[str, str]) -> dict[str, Any]:
    volume, _ = _shm()
    spec: dict[str, Any] = {"containers": containers, "volumes": [volume]}
    if node_labels:
        spec["nodeSelector"] = dict(node_labels)
    return spec


def _deployment(
    name: str,
    image: str,
    labels: dict[str, str],
    argv: list[str],
    gpus: int,
    node_labels: dict[str, str],
    replicas: int,
) -> dict[str, Any]:
    container = _engine_container("vllm", image, argv, gpus, probes=True)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            # GPUs are scarce: stop the old pod before the new one asks for the same GPUs.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec([container], node_labels)},
        },
    }


def _service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return service(name, selector, CONTAINER_PORT)


def _leader_worker_set(
    name: str,
    image: str,
    labels: dict[str, str],
    argv: list[str],
    gpus_per_node: int,
    nodes: int,
    node_labels: dict[str, str],
    replicas: int,
) -> dict[str, Any]:
    wait_for_workers = (
        "until python3 -c \"import ray, sys; ray.init(address='auto', logging_level='ERROR'); "
        f"sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= {nodes} else 1)\"; do sleep 5; done"
    )
    leader_cmd = (
        f"ray start --head --port={RAY_PORT} --num-gpus={gpus_per_node} && "
        f"{wait_for_workers} && exec {shlex.join(argv)}"
    )
    worker_cmd = f"ray start --address=$(LWS_LEADER_ADDRESS):{RAY_PORT} --num-gpus={gpus_per_node} --block"
    leader = _engine_container(
        "vllm-leader", image, ["/bin/sh", "-c", leader_cmd], gpus_per_node, probes=True
    )
    worker = _engine_container(
        "vllm-worker", image, ["/bin/sh", "-c", worker_cmd], gpus_per_node, probes=False
    )
    return _group(name, labels, leader, worker, nodes, node_labels, replicas)


def _group(
    name: str,
    labels: dict[str, str],
    leader: dict[str, Any],
    worker: dict[str, Any],
    nodes: int,
    node_labels: dict[str, str],
    replicas: int,
) -> dict[str, Any]:
    """A LeaderWorkerSet: `replicas` groups of `nodes` pods, the leader serving the API."""
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {
                "size": nodes,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": {**labels, "role": "leader"}},
                    "spec": _pod_spec([leader], node_labels),
                },
                "workerTemplate": {
                    "metadata": {"labels": {**labels, "role": "worker"}},
                    "spec": _pod_spec([worker], node_labels),
                },
            },
        },
    }


YAML_SUFFIXES = (".yaml", ".yml")


def manifest_path(output: Path, name: str, *, force: bool) -> Path:
    """Where `-o` puts the manifests: OUTPUT itself when it names a .yaml file, else OUTPUT/NAME.yaml.

    Checked before anything is written: an existing file is replaced only with --force, a file given where
    a folder is meant, or a missing parent folder, is a usage error."""
    from llmops.output import check_output_file

    output = output.expanduser()
    if output.suffix in YAML_SUFFIXES and not output.is_dir():
        path = output
    elif output.exists() and not output.is_dir():
        raise UsageError(
            f"-o {output} is a file, not a folder",
            hint=f"give a folder (NAME.yaml is written in it) or a .yaml path such as {output}.yaml",
        )
    else:
        path = output / f"{name}.yaml"
        if not output.is_dir():
            return path  # a new folder: nothing to overwrite
    check_output_file(path, force=force)
    return path


def write_manifests(
    prepared: Prepared, *, output: Path, replicas: int, force: bool
) -> tuple[Path, list[dict[str, Any]]]:
    """Write the manifests for `-o` through the staged writer (whole file, swapped in when complete)."""
    from llmops.output import write_output_file

    path = manifest_path(output, k8s_name(prepared.settings.served_name), force=force)
    docs = manifests(prepared, replicas=replicas)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output_file(path, to_yaml(docs), force=force)
    return path, docs


__all__ = ["k8s_name", "manifest_path", "manifests", "to_yaml", "write_manifests"]
