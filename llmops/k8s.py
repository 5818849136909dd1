"""Kubernetes manifest helpers shared by `serve --k8s` and `gateway --k8s`: names, YAML, Service, ServiceMonitor."""

from __future__ import annotations

import re
from typing import Any

MANAGED_BY = {"app.kubernetes.io/managed-by": "llmops"}
MONITORING_API = "monitoring.coreos.com/v1"


def k8s_name(name: str) -> str:
    """A DNS-1123 label from a profile name (dots and capitals are not allowed)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63].rstrip("-") or "llmops"


def labels_for(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, **MANAGED_BY}


def service(name: str, selector: dict[str, str], port: int) -> dict[str, Any]:
    """A ClusterIP Service exposing the pods' `http` port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels_for(name)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_monitor(name: str, *, path: str = "/metrics", interval: str = "15s") -> dict[str, Any]:
    """A Prometheus Operator ServiceMonitor scraping the Service of the same name on its `http` port."""
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "labels": labels_for(name)},
        "spec": {
            "selector": {"matchLabels": labels_for(name)},
            "endpoints": [{"port": "http", "path": path, "interval": interval}],
        },
    }


def to_yaml(docs: list[dict[str, Any]]) -> str:
    """Multi-document YAML without anchors (shared label dicts would otherwise become &id001 aliases)."""
    import yaml

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return "---\n".join(yaml.dump(d, Dumper=_NoAliases, sort_keys=False) for d in docs)
