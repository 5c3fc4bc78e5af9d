"""Pod manifests and waits shared by the node runtime tests."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import wait_for


async def wait_default_service_account(kube: KubeObjects, namespace: str) -> None:
    """Pods are refused until the ServiceAccount controller made `default` in a new namespace."""

    async def made() -> bool:
        return await kube.get("v1", "ServiceAccount", "default", namespace) is not None

    await wait_for(made, 60, f"ServiceAccount {namespace}/default")


def pod_manifest(name: str, namespace: str, node: str, script: str, **spec: Any) -> dict[str, Any]:
    """A pod pinned to `node` running `sh -c script`."""
    container: dict[str, Any] = {
        "name": "main",
        "image": "busybox",
        "command": ["sh", "-c", script],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 5,
            "containers": [container],
            **spec,
        },
    }


async def wait_pod(
    kube: KubeObjects, namespace: str, name: str, check: Any, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll the pod until `check(pod)` is true; returns the pod."""

    async def probe() -> dict[str, Any] | None:
        pod = await kube.get("v1", "Pod", name, namespace)
        return pod if pod is not None and check(pod) else None

    return await wait_for(probe, timeout, f"pod {namespace}/{name}")


def container_status(pod: dict[str, Any], name: str = "main") -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return {}


def running_with_ip(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


async def run(*command: str) -> str:
    """A command's stdout; fails the test with its stderr if it fails."""
    done = await asyncio.to_thread(
        subprocess.run, list(command), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout
