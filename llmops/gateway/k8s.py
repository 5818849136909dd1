"""`llmops gateway --k8s`: Deployment, Service, ConfigMap (the gateway section), Secret references, HPA,
ServiceMonitor. Secrets appear only as references to a Secret by variable name, never as values."""

from __future__ import annotations

from typing import Any

from llmops import __version__
from llmops.errors import UsageError
from llmops.gateway.plan import GatewayPlan
from llmops.k8s import k8s_name, labels_for, service, service_monitor

IMAGE = f"llmops/llmops:{__version__}"
PORT = 4000
CONFIG_DIR = "/etc/llmops"


def secret_vars(plan: GatewayPlan) -> list[str]:
    """Every environment variable the gateway needs from a Secret: client keys, provider keys, and the
    admin key when `admin_key_env:` names one."""
    names = {k.key_env for k in plan.section.keys if k.key_env}
    if plan.section.admin_key_env:
        names.add(plan.section.admin_key_env)
    names |= {d.api_key_env for r in plan.table.routes.values() for d in r.deployments if d.api_key_env}
    return sorted(n for n in names if n)


def manifests(
    plan: GatewayPlan, *, name: str = "llmops-gateway", image: str = IMAGE, replicas: int = 2
) -> list[dict[str, Any]]:
    import yaml

    sec = plan.section
    if not sec.keys:
        raise UsageError(
            "a gateway in a cluster listens beyond loopback and needs client keys",
            hint="add keys: to the gateway section",
        )
    name = k8s_name(name)
    labels = labels_for(name)
    shared = bool(sec.redis)
    section = sec.model_dump(
        mode="json", exclude_none=True, exclude_defaults=True, exclude={"host", "port", "workers"}
    )
    config_text = yaml.safe_dump({"gateway": section}, sort_keys=False)
    secret = f"{name}-secrets"
    env = [{"name": v, "valueFrom": {"secretKeyRef": {"name": secret, "key": v}}} for v in secret_vars(plan)]
    container = {
        "name": "gateway",
        "image": image,
        "command": [
            "llmops",
            "--config",
            f"{CONFIG_DIR}/llmops.yaml",
            "gateway",
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
        ],
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas if shared else 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # Ctrl-C semantics in a pod: SIGTERM drains requests in flight before the pod goes.
                    "terminationGracePeriodSeconds": 40,
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
                },
            },
        },
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config", "labels": labels},
        "data": {"llmops.yaml": config_text},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            # Without redis every replica would enforce its own limits: one replica only.
            "minReplicas": replicas if shared else 1,
            "maxReplicas": max(replicas, 10) if shared else 1,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    return [config_map, deployment, service(name, labels, PORT), hpa, service_monitor(name)]


def secret_note(plan: GatewayPlan, name: str = "llmops-gateway") -> str:
    """The kubectl line that creates the Secret the manifests refer to (values from your shell)."""
    vars_ = secret_vars(plan)
    args = " ".join(f'--from-literal={v}="${v}"' for v in vars_)
    return f"kubectl create secret generic {k8s_name(name)}-secrets {args}"
