"""The node runtime's command line and what it writes about its node (Node, status, Lease)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from sim.node_runtime.config import (
    ConfigError,
    parse_args,
    parse_label,
    parse_taint,
    restricted_label,
)
from sim.node_runtime.node_object import (
    HostFacts,
    lease_manifest,
    node_conditions,
    node_manifest,
    node_status,
)

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
FACTS = HostFacts(kernel_version="6.1.0", os_image="Debian 12", machine="x86_64", boot_id="b")
BASE = [
    "--node-name=aks-gw-0",
    "--kubeconfig=/k",
    "--state-dir=/s",
    "--cni-conf-dir=/c",
    "--cni-bin-dir=/b",
    "--kubelet-port=10250",
    "--serving-cert=/cert",
    "--serving-key=/key",
    "--internal-ip=10.224.0.4",
]


def test_labels_a_node_may_not_set_are_refused_up_front() -> None:
    assert restricted_label("node-role.kubernetes.io/agent")
    assert restricted_label("example.k8s.io/x")
    assert not restricted_label("kubernetes.io/hostname")
    assert not restricted_label("node.kubernetes.io/instance-type")
    assert not restricted_label("topology.kubernetes.io/zone")
    assert not restricted_label("kubernetes.azure.com/mode")
    assert not restricted_label("kubeegressgateway.azure.com/mode")
    assert not restricted_label("plain")
    with pytest.raises(ConfigError, match="NodeRestriction"):
        parse_label("node-role.kubernetes.io/gateway=")
    assert parse_label("kubeegressgateway.azure.com/mode=true") == (
        "kubeegressgateway.azure.com/mode",
        "true",
    )


def test_taints_parse_as_kubectl_writes_them() -> None:
    taint = parse_taint("kubeegressgateway.azure.com/mode=true:NoSchedule")
    assert taint.to_json() == {
        "key": "kubeegressgateway.azure.com/mode",
        "value": "true",
        "effect": "NoSchedule",
    }
    assert parse_taint("dedicated:NoExecute").to_json() == {
        "key": "dedicated",
        "effect": "NoExecute",
    }
    for bad in ("novalue", "k=v:Sometimes", ":NoSchedule"):
        with pytest.raises(ConfigError):
            parse_taint(bad)


def test_arguments_give_a_config_with_a_unique_netns_prefix() -> None:
    config = parse_args([*BASE, "--label=a=b", "--taint=k=v:NoSchedule", "--extra-path=/venv/bin"])
    assert config.labels == (("a", "b"),)
    assert config.container_path().startswith("/venv/bin:")
    other = parse_args([*BASE[:2], "--state-dir=/other", *BASE[3:]])
    assert config.pod_netns_prefix != other.pod_netns_prefix
    with pytest.raises(ConfigError, match="internal-ip"):
        parse_args([*BASE[:-1], "--internal-ip=node-a"])


def test_node_has_aks_addresses_plus_the_kubelet_dns_name() -> None:
    config = parse_args(
        [*BASE, "--provider-id=azure:///subscriptions/s/x", "--taint=k=v:NoSchedule", "--label=a=b"]
    )
    node = node_manifest(config, FACTS)
    assert node["spec"] == {
        "providerID": "azure:///subscriptions/s/x",
        "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}],
    }
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "aks-gw-0"
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "amd64"
    assert node["metadata"]["labels"]["a"] == "b"
    status = node_status(config, FACTS, [], NOW)
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "10.224.0.4"},
        {"type": "Hostname", "address": "aks-gw-0"},
        {"type": "InternalDNS", "address": "localhost"},
    ]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert status["capacity"] == {"cpu": "2", "memory": "8Gi", "pods": "110"}
    assert [c["type"] for c in status["conditions"]] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    first = node_conditions([], NOW)
    later = NOW + datetime.timedelta(minutes=5)
    again = node_conditions(first, later)
    ready = next(c for c in again if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert ready["lastHeartbeatTime"] == "2026-01-02T03:09:05Z"
    unknown = [{**c, "status": "Unknown"} if c["type"] == "Ready" else c for c in first]
    back = next(c for c in node_conditions(unknown, later) if c["type"] == "Ready")
    assert back["lastTransitionTime"] == "2026-01-02T03:09:05Z"


def test_lease_is_owned_by_the_node() -> None:
    lease = lease_manifest("n", "uid-1", 40, NOW)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert lease["spec"]["renewTime"] == "2026-01-02T03:04:05.000000Z"
    assert lease["spec"]["leaseDurationSeconds"] == 40


def test_paths_are_not_touched_by_parsing() -> None:
    assert parse_args(BASE).state_dir == Path("/s")
