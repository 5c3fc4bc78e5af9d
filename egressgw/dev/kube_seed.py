"""The Kubernetes objects the dev stack seeds: namespaces and the gateway Nodes.

Gateway Nodes are labelled and tainted as the install guide tells users to do, and carry the
provider IDs and addresses AKS would give them, so that code reading Nodes sees what it would
see on a real cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from contracts import kube_names
from sim.topology import Topology

SYSTEM_NAMESPACE = "egressgw-system"


def namespaces(topology: Topology) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in (SYSTEM_NAMESPACE, topology.kube_namespace)
    ]


def _node(name: str, pool: str, provider_id: str, internal_ip: str | None) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        kube_names.AKS_AGENT_POOL_LABEL: pool,
        kube_names.AKS_MODE_LABEL: kube_names.AKS_MODE_GATEWAY,
        kube_names.GATEWAY_NODE_LABEL: kube_names.GATEWAY_NODE_LABEL_VALUE,
    }
    addresses = [{"type": "Hostname", "address": name}]
    if internal_ip:
        addresses.insert(0, {"type": "InternalIP", "address": internal_ip})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "providerID": provider_id,
            "taints": [
                {
                    "key": kube_names.GATEWAY_NODE_TAINT_KEY,
                    "value": kube_names.GATEWAY_NODE_TAINT_VALUE,
                    "effect": kube_names.GATEWAY_NODE_TAINT_EFFECT,
                }
            ],
        },
        "status": {
            "addresses": addresses,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "nodeInfo": _node_info(name),
        },
    }


def _node_info(name: str) -> dict[str, str]:
    # Every field is required by the Kubernetes clients' models; IDs are stable per node name.
    node_id = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    return {
        "machineID": node_id.hex,
        "systemUUID": str(node_id),
        "bootID": str(uuid.uuid5(node_id, "boot")),
        "kernelVersion": "5.15.0-1079-azure",
        "osImage": "Ubuntu 22.04.5 LTS",
        "containerRuntimeVersion": "containerd://1.7.25-1",
        "kubeletVersion": "v1.33.2",
        "kubeProxyVersion": "v1.33.2",
        "operatingSystem": "linux",
        "architecture": "amd64",
    }


def gateway_nodes(topology: Topology, internal_ips: Mapping[str, str]) -> list[dict[str, Any]]:
    """One Node per VMSS instance and per pool VM; `internal_ips` maps node name to primary IP."""
    nodes: list[dict[str, Any]] = []
    for vmss_pool in topology.vmss_pools:
        for instance in range(vmss_pool.instance_count):
            name = vmss_pool.computer_name(instance)
            provider_id = f"azure://{topology.vmss_id(vmss_pool)}/virtualMachines/{instance}"
            nodes.append(_node(name, vmss_pool.pool_name, provider_id, internal_ips.get(name)))
    for vm_pool in topology.vm_pools:
        for index in range(vm_pool.vm_count):
            name = vm_pool.vm_name(index)
            provider_id = f"azure://{topology.vm_id(vm_pool, index)}"
            nodes.append(_node(name, vm_pool.pool_name, provider_id, internal_ips.get(name)))
    return nodes
