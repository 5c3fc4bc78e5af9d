"""Readiness and liveness probes: an httpGet probe reaches the server inside the pod's network
namespace, an exec probe runs in the container's namespaces, a failing liveness probe restarts
the container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes
from tests.fixtures.pods import (
    container_status,
    pod_manifest,
    running_with_ip,
    wait_default_service_account,
    wait_pod,
)


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
    return conditions.get("Ready") == "True"


async def test_probes(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str, tmp_path: Path
) -> None:
    node = await node_runtimes.start()
    ns = kube_namespace
    await wait_default_service_account(kube, ns)
    http = pod_manifest(
        "http",
        ns,
        node.name,
        "",
        container={
            "command": ["python3", "-m", "http.server", "8080"],
            "workingDir": str(tmp_path),
            "ports": [{"name": "web", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1},
        },
    )
    flag = tmp_path / "ready-flag"
    gated = pod_manifest(
        "gated",
        ns,
        node.name,
        "sleep 3600",
        container={
            "readinessProbe": {"exec": {"command": ["test", "-e", str(flag)]}, "periodSeconds": 1}
        },
    )
    dying = pod_manifest(
        "dying",
        ns,
        node.name,
        "sleep 3600",
        container={
            "livenessProbe": {
                "exec": {"command": ["test", "-e", str(tmp_path / "never")]},
                "periodSeconds": 1,
                "failureThreshold": 1,
            }
        },
    )
    for manifest in (http, gated, dying):
        await kube.create(manifest)

    await wait_pod(kube, ns, "http", ready)
    pod = await wait_pod(kube, ns, "gated", running_with_ip)
    assert not container_status(pod)["ready"]
    flag.touch()
    await wait_pod(kube, ns, "gated", ready)
    pod = await wait_pod(
        kube, ns, "dying", lambda p: container_status(p).get("restartCount", 0) >= 1, timeout=90
    )
    assert container_status(pod)["lastState"]["terminated"]["exitCode"] in (137, 143)
