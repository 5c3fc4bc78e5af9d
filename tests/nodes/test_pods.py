"""Pods on a node runtime through the real API server: a Deployment's replicas run as processes
in pod namespaces made by the node's bridge conflist, `kubectl logs` reaches them through the API
server, and deleting the Deployment releases pods, namespaces and addresses; hostNetwork pods run
in the node's namespace; init containers run first; SIGTERM reaches a container on deletion."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes, RunningNode, wait_for
from tests.fixtures.pods import (
    pod_manifest,
    run,
    running_with_ip,
    wait_default_service_account,
    wait_pod,
)

GATEWAY_TAINT = "kubeegressgateway.azure.com/mode=true:NoSchedule"


def deployment(name: str, namespace: str, node: str) -> dict[str, Any]:
    script = (
        "import os, time\n"
        "print('hello from', os.environ['POD_NAME'], flush=True)\n"
        "time.sleep(3600)\n"
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": [
                        {"key": "kubeegressgateway.azure.com/mode", "operator": "Exists"}
                    ],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "app",
                            "image": "python:3.11",
                            "command": ["python3", "-c", script],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                        }
                    ],
                },
            },
        },
    }


async def test_deployment_runs_with_pod_ips_logs_and_is_released_on_delete(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str
) -> None:
    node = await node_runtimes.start(taints=(GATEWAY_TAINT,))
    await wait_default_service_account(kube, kube_namespace)
    await kube.create(deployment("web", kube_namespace, node.name))

    async def two_running() -> list[dict[str, Any]] | None:
        pods = await kube.list("v1", "Pod", kube_namespace, label_selector="app=web")
        running = [p for p in pods if running_with_ip(p)]
        return running if len(running) == 2 else None

    pods = await wait_for(two_running, 90, "two replicas Running with IPs")
    subnet = ipaddress.ip_network(node.spec.pod_subnet)
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2
    assert all(ipaddress.ip_address(ip) in subnet for ip in ips)
    assert all(p["status"]["hostIP"] == node.spec.internal_ip for p in pods)
    assert len(node.pod_namespaces()) == 2
    assert sorted(node.ipam_allocations()) == sorted(ips)

    control_plane = node_runtimes.cluster.control_plane
    for pod in pods:
        name = pod["metadata"]["name"]

        async def logged(name: str = name) -> str | None:
            out = await control_plane.kubectl("logs", "-n", kube_namespace, name, "-c", "app")
            return out if f"hello from {name}" in out else None

        await wait_for(logged, 30, f"kubectl logs of {name}")
    # Each pod's eth0 holds its address; the node's namespace holds the bridge and gateway.
    for pod in pods:
        shown = await run("ip", "-n", pod_netns(node, pod), "-4", "addr", "show", "eth0")
        assert pod["status"]["podIP"] + "/" in shown
    bridge = await run("ip", "-n", node.netns, "-4", "addr", "show", "cni0")
    assert str(next(subnet.hosts())) + "/" in bridge

    await kube.delete("apps/v1", "Deployment", "web", kube_namespace)

    async def released() -> bool:
        left = await kube.list("v1", "Pod", kube_namespace, label_selector="app=web")
        return not left and not node.pod_namespaces() and not node.ipam_allocations()

    await wait_for(released, 90, "pods, their netns and their addresses released")


def pod_netns(node: RunningNode, pod: dict[str, Any]) -> str:
    return f"{node.pod_netns_prefix}-{pod['metadata']['uid'].replace('-', '')[:8]}"


async def test_host_network_pod_runs_in_the_node_namespace(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str, tmp_path: Path
) -> None:
    node = await node_runtimes.start()
    await wait_default_service_account(kube, kube_namespace)
    out, mount = tmp_path / "out", tmp_path / "mnt"
    out.mkdir()
    script = 'readlink /proc/self/ns/net > "$OUT/netns"; echo "$POD_IP" > "$OUT/ip"; sleep 3600'
    manifest = pod_manifest(
        "host",
        kube_namespace,
        node.name,
        script,
        hostNetwork=True,
        volumes=[{"name": "out", "hostPath": {"path": str(out), "type": "Directory"}}],
        container={
            "volumeMounts": [{"name": "out", "mountPath": str(mount)}],
            "env": [
                {"name": "OUT", "value": str(mount)},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            ],
        },
    )
    await kube.create(manifest)
    pod = await wait_pod(kube, kube_namespace, "host", running_with_ip)
    assert pod["status"]["podIP"] == node.spec.internal_ip

    async def written() -> str | None:
        path = out / "ip"
        text = path.read_text().strip() if path.exists() else ""
        return text or None

    assert await wait_for(written, 30, "the pod to write its IP") == node.spec.internal_ip
    node_ns = (
        await run("ip", "netns", "exec", node.netns, "readlink", "/proc/self/ns/net")
    ).strip()
    assert (out / "netns").read_text().strip() == node_ns
    assert not node.pod_namespaces()
    # The bind mount lived only in the container's mount namespace: the host sees an empty
    # mount point.
    assert mount.is_dir() and not any(mount.iterdir())


async def test_init_containers_run_first_and_sigterm_reaches_the_container(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str, tmp_path: Path
) -> None:
    node = await node_runtimes.start()
    await wait_default_service_account(kube, kube_namespace)
    out, mount = tmp_path / "out", tmp_path / "mnt"
    out.mkdir()
    volume = [{"name": "out", "hostPath": {"path": str(out)}}]
    mounts = [{"name": "out", "mountPath": str(mount)}]
    manifest = pod_manifest(
        "graceful",
        kube_namespace,
        node.name,
        f"trap 'echo term > {mount}/main; exit 0' TERM; cat {mount}/init > {mount}/seen; "
        "while true; do sleep 0.2; done",
        volumes=volume,
        container={"volumeMounts": mounts},
        initContainers=[
            {
                "name": "first",
                "image": "busybox",
                "command": ["sh", "-c", f"echo one > {mount}/init"],
                "volumeMounts": mounts,
            },
            {
                "name": "second",
                "image": "busybox",
                "command": ["sh", "-c", f"echo two >> {mount}/init"],
                "volumeMounts": mounts,
            },
        ],
    )
    await kube.create(manifest)
    pod = await wait_pod(kube, kube_namespace, "graceful", running_with_ip)
    inits = pod["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["exitCode"] for s in inits] == [0, 0]

    async def seen() -> str | None:
        path = out / "seen"
        return path.read_text() if path.exists() and path.read_text() else None

    assert await wait_for(seen, 30, "the main container to read the init output") == "one\ntwo\n"
    await kube.delete("v1", "Pod", "graceful", kube_namespace)

    async def gone() -> bool:
        return await kube.get("v1", "Pod", "graceful", kube_namespace) is None

    await wait_for(gone, 60, "the pod to be released")
    assert (out / "main").read_text().strip() == "term"
    assert not node.pod_namespaces()
    assert node.ipam_allocations() == []
