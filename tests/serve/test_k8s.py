"""--k8s manifests, validated offline: built-in kinds against the Kubernetes schemas (kubernetes-validate),
the LeaderWorkerSet CRD (not in those schemas) by its required structure plus its pod templates as Pods."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from .conftest import pool_70b_tp4_pp2

K8S_VERSION = kubernetes_validate.latest_version()


def validate_builtin(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def validate_pod_template(template: dict) -> None:
    """A CRD's pod template is a PodTemplateSpec: validate it as a Pod."""
    validate_builtin(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "t", **template.get("metadata", {})},
            "spec": template["spec"],
        }
    )


def validate_lws(doc: dict) -> None:
    """The LeaderWorkerSet v1 fields that the controller requires, checked by hand."""
    assert doc["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert doc["metadata"]["name"]
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # honest: the schemas do not know this CRD
        validate_builtin(doc)
    tmpl = doc["spec"]["leaderWorkerTemplate"]
    assert isinstance(doc["spec"]["replicas"], int) and doc["spec"]["replicas"] >= 1
    assert isinstance(tmpl["size"], int) and tmpl["size"] >= 2
    assert tmpl["restartPolicy"] in ("RecreateGroupOnPodRestart", "None")
    assert set(tmpl) <= {"size", "restartPolicy", "leaderTemplate", "workerTemplate", "subGroupPolicy"}
    validate_pod_template(tmpl["leaderTemplate"])
    validate_pod_template(tmpl["workerTemplate"])


def load(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_llama_8b_deployment_and_service(cli) -> None:
    result = cli("serve", "llama-8b", "--k8s", "--replicas", "2")
    assert result.exit_code == 0, result.output
    docs = load(result.stdout)
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "ServiceMonitor"]
    dep, svc, monitor = docs
    validate_builtin(dep)
    validate_builtin(svc)
    # ServiceMonitor is a CRD the schemas do not know: check that it selects this Service's labels.
    assert monitor["spec"]["selector"]["matchLabels"] == svc["metadata"]["labels"]
    assert monitor["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert dep["metadata"]["name"] == "llama-3-1-8b"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu-type": "rtx4090"}
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert container["command"][:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    assert (
        "--host" in container["command"]
        and container["command"][container["command"].index("--host") + 1] == "0.0.0.0"
    )
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["env"] == [
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}},
        }
    ]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_multi_node_llama_70b_is_a_leader_worker_set(cli, a100_pool, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_should_never_appear")
    out_dir = tmp_path / "manifests"
    args = (
        *pool_70b_tp4_pp2(a100_pool),
        "--k8s",
        "-o",
        str(out_dir),
    )
    result = cli(*args)
    assert result.exit_code == 0, result.output
    path = out_dir / "llama-3-1-70b.yaml"
    text = path.read_text()
    assert "hf_should_never_appear" not in text
    lws, svc, _monitor = load(text)
    validate_lws(lws)
    validate_builtin(svc)
    tmpl = lws["spec"]["leaderWorkerTemplate"]
    assert tmpl["size"] == 2
    leader = tmpl["leaderTemplate"]["spec"]["containers"][0]
    worker = tmpl["workerTemplate"]["spec"]["containers"][0]
    assert leader["resources"]["limits"] == {"nvidia.com/gpu": 4}
    assert "--distributed-executor-backend ray" in leader["command"][2]
    assert leader["command"][2].startswith("ray start --head --port=6379")
    assert worker["command"][2] == "ray start --address=$(LWS_LEADER_ADDRESS):6379 --num-gpus=4 --block"
    assert svc["spec"]["selector"]["role"] == "leader"
    assert tmpl["leaderTemplate"]["metadata"]["labels"]["role"] == "leader"
    # never overwrite the user's file without --force
    again = cli(*args)
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert cli(*args, "--force").exit_code == 0


def test_k8s_json_and_refusals(cli) -> None:
    result = cli("serve", "llama-8b", "--k8s", "--json")
    assert result.exit_code == 0
    assert [d["kind"] for d in json.loads(result.stdout)] == ["Deployment", "Service", "ServiceMonitor"]
    smol = cli("serve", "smollm2", "--k8s")
    assert smol.exit_code == 2 and "--k8s writes vLLM manifests" in smol.stderr
    no_fit = cli("serve", "llama-70b", "--tp", "1", "--k8s")
    assert no_fit.exit_code == 2 and "does not fit" in no_fit.stderr


def test_engine_image_setting_picks_the_pods_image(cli, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_SERVE_ENGINE_IMAGE", "registry.example/vllm-openai:v0.32.0")
    result = cli("serve", "llama-8b", "--k8s", "--json")
    assert result.exit_code == 0, result.output
    dep = next(d for d in json.loads(result.stdout) if d["kind"] == "Deployment")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/vllm-openai:v0.32.0"
    assert container["command"][:2] == ["vllm", "serve"]  # a container runs vllm itself, no launcher
