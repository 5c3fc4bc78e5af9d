"""What the node runtime writes about its node: the Node it registers, its status, its Lease.

Pure functions of the configuration, the clock and what is already stored. Addresses are as AKS
has them (InternalIP, Hostname = the node name) plus one InternalDNS address, by default
`localhost`: kube-apiserver runs with `--kubelet-preferred-address-types=InternalDNS,...` and so
dials the kubelet endpoint on 127.0.0.1 while `kubectl get nodes -o wide` shows the InternalIP.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sim.node_runtime.config import RuntimeConfig

Json = dict[str, Any]
KUBELET_VERSION: Final = "v1.34.4"
RUNTIME_VERSION: Final = "egressgw-node-runtime://0.1.0"
LEASE_NAMESPACE: Final = "kube-node-lease"
_ARCH: Final = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


@dataclass(frozen=True)
class HostFacts:
    """What the node reports of the machine under it (node_registration.py reads it)."""

    kernel_version: str
    os_image: str
    machine: str  # platform.machine()
    boot_id: str


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def architecture(machine: str) -> str:
    return _ARCH.get(machine, machine)


def node_labels(config: RuntimeConfig, facts: HostFacts) -> dict[str, str]:
    arch = architecture(facts.machine)
    labels = {
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }
    labels.update(dict(config.labels))
    return labels


def node_manifest(config: RuntimeConfig, facts: HostFacts) -> Json:
    """The Node as the runtime creates it: labels and taints are only settable at creation
    under NodeRestriction, so they are all here."""
    spec: Json = {}
    if config.provider_id:
        spec["providerID"] = config.provider_id
    if config.taints:
        spec["taints"] = [t.to_json() for t in config.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.node_name,
            "labels": node_labels(config, facts),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
    }


def node_addresses(config: RuntimeConfig) -> list[Json]:
    return [
        {"type": "InternalIP", "address": config.internal_ip},
        {"type": "Hostname", "address": config.node_name},
        {"type": "InternalDNS", "address": config.kubelet_dns_name},
    ]


_CONDITIONS: Final = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def node_conditions(previous: list[Json], now: datetime.datetime) -> list[Json]:
    """The four kubelet conditions; a condition whose status did not change keeps its
    lastTransitionTime."""
    before = {c.get("type"): c for c in previous}
    out = []
    for kind, status, reason, message in _CONDITIONS:
        old = before.get(kind)
        transition = (
            old["lastTransitionTime"]
            if old and old.get("status") == status and old.get("lastTransitionTime")
            else rfc3339(now)
        )
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": rfc3339(now),
                "lastTransitionTime": transition,
            }
        )
    return out


def node_status(
    config: RuntimeConfig, facts: HostFacts, previous_conditions: list[Json], now: datetime.datetime
) -> Json:
    resources = {"cpu": config.cpu, "memory": config.memory, "pods": str(config.max_pods)}
    system_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{config.node_name}.egressgw.node"))
    return {
        "addresses": node_addresses(config),
        "capacity": resources,
        "allocatable": resources,
        "conditions": node_conditions(previous_conditions, now),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": {
            "machineID": system_uuid.replace("-", ""),
            "systemUUID": system_uuid,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel_version,
            "osImage": facts.os_image,
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": architecture(facts.machine),
        },
    }


def lease_manifest(
    node_name: str, node_uid: str, duration_seconds: int, now: datetime.datetime
) -> Json:
    """The node's Lease in kube-node-lease, owned by the Node (as the kubelet makes it)."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": micro_time(now),
        },
    }
