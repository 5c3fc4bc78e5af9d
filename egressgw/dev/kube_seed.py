"""The Kubernetes objects the dev stack seeds: namespaces, the gateway Nodes and the regular
Nodes.

Gateway Nodes are labelled and tainted as the install guide tells users to do; regular Nodes are
labelled as AKS labels a user pool's and registered with the taint
`egressgateway.kubernetes.azure.com/cni-not-ready:NoSchedule`, as the nodes of an egressgw
cluster are provisioned: no pod lands there before the node's CNI manager has chained the plugin
(it removes the taint). All carry the provider IDs and addresses AKS would give them, so that
code reading Nodes sees what it would see on a real cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from contracts import kube_names
from sim.topology import Topology

SYSTEM_NAMESPACE = "egressgw-system"
AKS_MODE_USER = "user"  # kubernetes.azure.com/mode of a user pool's nodes


def namespaces(topology: Topology) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in (SYSTEM_NAMESPACE, topology.kube_namespace)
    ]


def _node(
    name: str, pool: str, provider_id: str, internal_ip: str | None, *, gateway: bool = True
) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        kube_names.AKS_AGENT_POOL_LABEL: pool,
        kube_names.AKS_MODE_LABEL: kube_names.AKS_MODE_GATEWAY if gateway else AKS_MODE_USER,
    }
    spec: dict[str, Any] = {"providerID": provider_id}
    if gateway:
        labels[kube_names.GATEWAY_NODE_LABEL] = kube_names.GATEWAY_NODE_LABEL_VALUE
        spec["taints"] = [
            {
                "key": kube_names.GATEWAY_NODE_TAINT_KEY,
                "value": kube_names.GATEWAY_NODE_TAINT_VALUE,
                "effect": kube_names.GATEWAY_NODE_TAINT_EFFECT,
            }
        ]
    else:
        spec["taints"] = [{"key": kube_names.CNI_NOT_READY_TAINT_KEY, "effect": "NoSchedule"}]
    addresses = [{"type": "Hostname", "address": name}]
    if internal_ip:
        addresses.insert(0, {"type": "InternalIP", "address": internal_ip})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
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
            provider_id = topology.vmss_provider_id(vmss_pool, instance)
            nodes.append(_node(name, vmss_pool.pool_name, provider_id, internal_ips.get(name)))
    for vm_pool in topology.vm_pools:
        for index in range(vm_pool.vm_count):
            name = vm_pool.vm_name(index)
            provider_id = topology.vm_provider_id(vm_pool, index)
            nodes.append(_node(name, vm_pool.pool_name, provider_id, internal_ips.get(name)))
    return nodes


def regular_nodes(topology: Topology, internal_ips: Mapping[str, str]) -> list[dict[str, Any]]:
    """One Node per instance of the regular (user) pools: no gateway label, tainted until its
    CNI manager is installed."""
    return [
        _node(
            pool.computer_name(instance),
            pool.pool_name,
            topology.vmss_provider_id(pool, instance),
            internal_ips.get(pool.computer_name(instance)),
            gateway=False,
        )
        for pool in topology.user_pools
        for instance in range(pool.instance_count)
    ]
