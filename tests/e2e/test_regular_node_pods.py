"""A plain workload on the dev stack's regular nodes, through the node runtimes (as root):
`egressgw dev up` runs a node runtime per node (sim/node_runtime) on the real control plane. A
Deployment of two replicas of a small command becomes two Running pods with addresses from
their nodes' pod CIDRs (bridge + host-local); each connects to the "internet" echo and prints
the source address the echo saw, which `kubectl logs` shows through the API server; deleting the
Deployment removes the pods, their network namespaces and their host-local leases; a node whose
runtime crashes is marked NotReady by the real controller manager.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.dynamic import DynamicClient

from contracts import kube_names
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.dev_stack import DevStackRun
from tests.fixtures.node_runtime import node_ready, wait_for
from tests.fixtures.pods import running_with_ip, wait_default_service_account

pytestmark = [pytest.mark.slow, pytest.mark.needs_root, pytest.mark.kubectl]

APP = "echo-client"
# Connects to the echo (retrying while the pod's network settles), prints what the echo
# answered (the source address it saw), then stays up.
SCRIPT = """
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
for attempt in range(60):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            answer = s.makefile().readline().strip()
        break
    except OSError as err:
        print("echo not reachable yet:", err, flush=True)
        time.sleep(1)
print("echo saw", answer, flush=True)
time.sleep(3600)
"""


def deployment(namespace: str, echo: tuple[str, int]) -> dict[str, Any]:
    """Two replicas on the regular (user) pool, one per node."""
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {kube_names.AKS_MODE_LABEL: "user"},
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": labels},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "client",
                            "image": "python:3.11",
                            "command": ["python3", "-c", SCRIPT, echo[0], str(echo[1])],
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
async def dev_kube(dev_stack_with_nodes: DevStackRun) -> AsyncIterator[KubeObjects]:
    """The dev stack's API server, as the admin (the kubeconfig `dev up` wrote)."""
    api: ApiClient = await kube_config.new_client_from_config(
        config_file=str(dev_stack_with_nodes.kubeconfig)
    )
    async with api:
        yield KubeObjects(await DynamicClient(api))


async def kubectl_logs(kubectl: Path, stack: DevStackRun, namespace: str, pod: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [str(kubectl), "--kubeconfig", str(stack.kubeconfig), "logs", "-n", namespace, pod],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""


def pod_netns(stack: DevStackRun, pod: dict[str, Any]) -> list[str]:
    """The pod's network namespace(s): `<prefix>p<node index>-<first 8 hex of its uid>`."""
    suffix = "-" + pod["metadata"]["uid"].replace("-", "")[:8]
    pods = f"{stack.prefix}p"
    return [n for n in stack.netns_names() if n.startswith(pods) and n.endswith(suffix)]


def leases(node: dict[str, Any]) -> set[str]:
    """The addresses host-local handed out on a node: one file per address in its data dir."""
    root = Path(node["cni"]["data_dir"])
    return {p.name for p in root.glob("*/*") if p.name[0].isdigit() and "last_res" not in p.name}


async def test_deployment_on_regular_nodes_runs_logs_releases_and_a_crashed_node_goes_not_ready(
    dev_stack_with_nodes: DevStackRun, dev_kube: KubeObjects, kubectl_path: Path
) -> None:
    stack, kube = dev_stack_with_nodes, dev_kube
    network = stack.network()
    regular = {n["name"]: n for n in stack.nodes("regular")}
    assert len(regular) == 2
    echo = (str(network["echo"]["ip"]), int(network["echo"]["port"]))
    namespace = f"e2e-{uuid.uuid4().hex[:6]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await wait_default_service_account(kube, namespace)

    await kube.create(deployment(namespace, echo))

    async def two_running() -> list[dict[str, Any]] | None:
        pods = await kube.list("v1", "Pod", namespace, label_selector=f"app={APP}")
        running = [p for p in pods if running_with_ip(p)]
        return running if len(running) == 2 else None

    try:
        pods = await wait_for(two_running, 120, "two replicas Running with IPs")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{stack.logs()}") from None

    # One replica on each regular node, its address from that node's pod CIDR.
    assert {p["spec"]["nodeName"] for p in pods} == set(regular)
    for pod in pods:
        node = regular[pod["spec"]["nodeName"]]
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(
            node["pod_cidr"]
        )
        assert pod["status"]["hostIP"] == node["primary_ip"]
        assert len(pod_netns(stack, pod)) == 1
        assert pod["status"]["podIP"] in leases(node)

    # Each pod reached the internet and the echo saw the cluster's outbound IP; the built
    # kubectl reads that through the API server from the node runtime's kubelet endpoint.
    for pod in pods:
        name = pod["metadata"]["name"]

        async def logged(name: str = name) -> str | None:
            out = await kubectl_logs(kubectl_path, stack, namespace, name)
            return out if "echo saw" in out else None

        output = await wait_for(logged, 60, f"kubectl logs of {name} to show the echo's answer")
        assert f"echo saw {network['outbound_ip']}\n" in output, output

    await kube.delete("apps/v1", "Deployment", APP, namespace)

    async def released() -> bool:
        left = await kube.list("v1", "Pod", namespace, label_selector=f"app={APP}")
        namespaces_left = [n for pod in pods for n in pod_netns(stack, pod)]
        ips = {p["status"]["podIP"] for p in pods}
        leases_left = [ip for node in regular.values() for ip in leases(node) & ips]
        return not left and not namespaces_left and not leases_left

    await wait_for(released, 120, "pods, their network namespaces and their leases released")

    # A node runtime that crashes stops renewing its Lease: the node lifecycle controller of
    # the real controller manager marks the Node's Ready condition Unknown (grace 20 s).
    # Held down: the dev stack would start a crashed runtime again at once.
    crashed = sorted(regular)[0]
    stack.hold(f"node-runtime/{crashed}", kill=True)

    async def not_ready() -> dict[str, Any] | None:
        node = await kube.get("v1", "Node", crashed)
        return node if node is not None and node_ready(node) == "Unknown" else None

    node = await wait_for(not_ready, 120, f"Node {crashed} marked NotReady")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NodeStatusUnknown"
    # The other regular node keeps renewing its Lease.
    survivor = await kube.get("v1", "Node", sorted(regular)[1])
    assert survivor is not None and node_ready(survivor) == "True"
